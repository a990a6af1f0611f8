// Test-only: an independent validator of text/json_schema.h's subset, written from JSON
// Schema's meaning (draft 2020-12), not from the automaton, so that constrained outputs are
// checked against what the schema says. Shared by the JSON and DSML constraint tests.
#pragma once

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace dsv4::test {

using json = nlohmann::json;

inline bool valid(const json& v, const json& s, const json& root);

inline bool valid_type(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

inline const json& deref(const std::string& ref, const json& root) {
  if (ref == "#") return root;
  const std::string defs = ref.rfind("#/$defs/", 0) == 0 ? "$defs" : "definitions";
  return root[defs][ref.substr(defs.size() + 3)];
}

inline bool valid(const json& v, const json& s, const json& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref") && !valid(v, deref(s["$ref"], root), root)) return false;
  if (s.contains("anyOf")) {
    bool any = false;
    for (const auto& a : s["anyOf"]) any = any || valid(v, a, root);
    if (!any) return false;
  }
  if (s.contains("type")) {
    const json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
    bool any = false;
    for (const auto& t : types) any = any || valid_type(v, t.get<std::string>());
    if (!any) return false;
  }
  if (s.contains("enum")) {
    bool any = false;
    for (const auto& e : s["enum"]) any = any || e == v;
    if (!any) return false;
  }
  if (s.contains("const") && s["const"] != v) return false;
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& r : s["required"])
        if (!v.contains(r.get<std::string>())) return false;
    for (const auto& [k, x] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (!valid(x, s["properties"][k], root)) return false;
      } else if (s.contains("additionalProperties") && !valid(x, s["additionalProperties"], root)) {
        return false;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
    if (s.contains("items"))
      for (const auto& x : v)
        if (!valid(x, s["items"], root)) return false;
  }
  return true;
}

}  // namespace dsv4::test
