#include "text/json_schema.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <tuple>

namespace dsv4::text {
namespace {

using json = nlohmann::json;
using Kind = JsonNode::Kind;

Status bad(const std::string& m) { return Status::invalid_argument(m); }

// Keywords that say nothing about which values are valid.
bool is_annotation(const std::string& k) {
  static const std::set<std::string> a = {"title",    "description", "default",   "examples",  "$schema", "$id",
                                          "$comment", "deprecated",  "readOnly",  "writeOnly", "strict",  "name",
                                          "$defs",    "definitions"};
  return a.count(k) > 0;
}

bool is_supported(const std::string& k) {
  static const std::set<std::string> s = {"type",     "properties", "required", "additionalProperties", "items",
                                          "minItems", "maxItems",   "enum",     "const",                "anyOf",
                                          "$ref"};
  return s.count(k) > 0;
}

bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "number") return v.is_number();
  // JSON Schema: an integer is a number with no fractional part (1.0 is one).
  if (type == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  return false;
}

class Compiler {
 public:
  Compiler(const json& doc, std::string where) : doc_(doc), where_(std::move(where)) {}

  Result<std::shared_ptr<const JsonGrammar>> run() {
    DSV4_ASSIGN_OR_RETURN(g_.root, compile(doc_, where_));
    DSV4_TRY(flatten_leaves());
    DSV4_TRY(prune_infinite());
    return std::shared_ptr<const JsonGrammar>(std::make_shared<JsonGrammar>(std::move(g_)));
  }

 private:
  Result<uint32_t> add(JsonNode n) {
    if (g_.nodes.size() >= kMaxGrammarNodes)
      return bad("'" + where_ + "': the schema is too large (more than " + std::to_string(kMaxGrammarNodes) + " nodes)");
    g_.nodes.push_back(std::move(n));
    return uint32_t(g_.nodes.size() - 1);
  }
  Result<uint32_t> literal(std::vector<std::string> texts) {
    std::sort(texts.begin(), texts.end());
    texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
    JsonNode n;
    n.kind = Kind::literal;
    n.literals = std::move(texts);
    return add(std::move(n));
  }
  Result<uint32_t> simple(Kind k) {
    JsonNode n;
    n.kind = k;
    return add(std::move(n));
  }

  // Any JSON value: one shared node, built on first use (it refers to itself).
  Result<uint32_t> any() {
    if (any_ >= 0) return uint32_t(any_);
    DSV4_ASSIGN_OR_RETURN(const uint32_t id, add(JsonNode{}));
    any_ = int32_t(id);
    JsonNode obj;
    obj.kind = Kind::object;
    obj.additional = int32_t(id);
    JsonNode arr;
    arr.kind = Kind::array;
    arr.items = id;
    std::vector<uint32_t> alts;
    DSV4_ASSIGN_OR_RETURN(uint32_t o, add(std::move(obj)));
    DSV4_ASSIGN_OR_RETURN(uint32_t a, add(std::move(arr)));
    DSV4_ASSIGN_OR_RETURN(uint32_t s, simple(Kind::string));
    DSV4_ASSIGN_OR_RETURN(uint32_t n, simple(Kind::number));
    DSV4_ASSIGN_OR_RETURN(uint32_t l, literal({"false", "null", "true"}));
    g_.nodes[id].alternatives = {o, a, s, n, l};
    return id;
  }

  Result<uint32_t> resolve_ref(const std::string& ref, const std::string& path) {
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    const json* target = nullptr;
    std::string name;
    if (ref == "#") {
      target = &doc_;
    } else {
      for (const char* section : {"$defs", "definitions"}) {
        const std::string prefix = std::string("#/") + section + "/";
        if (ref.rfind(prefix, 0) != 0) continue;
        // JSON pointer escapes (RFC 6901): ~1 is '/', ~0 is '~'.
        for (size_t i = prefix.size(); i < ref.size(); ++i) {
          if (ref[i] == '/') return bad("'" + path + ".$ref': only references to '#/" + section + "/NAME' are supported");
          if (ref[i] == '~' && i + 1 < ref.size() && (ref[i + 1] == '0' || ref[i + 1] == '1')) {
            name += ref[i + 1] == '0' ? '~' : '/';
            ++i;
          } else {
            name += ref[i];
          }
        }
        if (doc_.is_object() && doc_.contains(section) && doc_[section].is_object() && doc_[section].contains(name))
          target = &doc_[section][name];
      }
      if (!target)
        return bad("'" + path + ".$ref': '" + ref +
                   "' does not name a schema of this document (supported: '#', '#/$defs/NAME', '#/definitions/NAME')");
    }
    // Reserve the node first, so that a recursive reference finds it.
    DSV4_ASSIGN_OR_RETURN(const uint32_t id, add(JsonNode{}));
    refs_[ref] = id;
    DSV4_ASSIGN_OR_RETURN(const uint32_t t, compile(*target, ref == "#" ? where_ : where_ + "." + ref.substr(2)));
    g_.nodes[id].alternatives = {t};
    return id;
  }

  Status check_keywords(const json& s, const std::string& path) {
    for (const auto& [k, v] : s.items())
      if (!is_annotation(k) && !is_supported(k)) return bad("'" + path + "': unsupported keyword '" + k + "'");
    return {};
  }
  // Keywords other than annotations and `allowed`, for keywords that must stand alone.
  Status check_alone(const json& s, const std::string& path, const std::string& key,
                     std::initializer_list<const char*> allowed = {}) {
    for (const auto& [k, v] : s.items()) {
      bool ok = k == key || is_annotation(k);
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) return bad("'" + path + "': '" + k + "' together with '" + key + "' is not supported");
    }
    return {};
  }

  Result<std::vector<std::string>> types_of(const json& s, const std::string& path) {
    static const std::set<std::string> known = {"object", "array", "string", "number", "integer", "boolean", "null"};
    std::vector<std::string> types;
    auto it = s.find("type");
    if (it == s.end()) return types;
    if (it->is_string()) {
      types.push_back(it->get<std::string>());
    } else if (it->is_array() && !it->empty()) {
      for (const auto& t : *it) {
        if (!t.is_string()) return bad("'" + path + ".type' must be a string or an array of strings");
        types.push_back(t.get<std::string>());
      }
    } else {
      return bad("'" + path + ".type' must be a string or a non-empty array of strings");
    }
    for (const auto& t : types)
      if (!known.count(t)) return bad("'" + path + ".type': unknown type '" + t + "'");
    return types;
  }

  // Bounded recursion: the request parser limits JSON nesting, but a chain of $refs could
  // still nest compile() once per definition.
  Result<uint32_t> compile(const json& s, const std::string& path) {
    if (depth_ >= kMaxSchemaDepth)
      return bad("'" + path + "': the schema nests deeper than " + std::to_string(kMaxSchemaDepth) +
                 " levels ($ref chains included)");
    depth_ += 1;
    Result<uint32_t> r = compile_schema(s, path);
    depth_ -= 1;
    return r;
  }

  Result<uint32_t> compile_schema(const json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return any();
      return bad("'" + path + "' is false: no value satisfies it");
    }
    if (!s.is_object()) return bad("'" + path + "' must be a schema (an object or a boolean)");
    DSV4_TRY(check_keywords(s, path));
    if (s.contains("$ref")) {
      DSV4_TRY(check_alone(s, path, "$ref"));
      if (!s["$ref"].is_string()) return bad("'" + path + ".$ref' must be a string");
      return resolve_ref(s["$ref"].get<std::string>(), path);
    }
    if (s.contains("anyOf")) {
      DSV4_TRY(check_alone(s, path, "anyOf"));
      const json& alts = s["anyOf"];
      if (!alts.is_array() || alts.empty()) return bad("'" + path + ".anyOf' must be a non-empty array of schemas");
      JsonNode n;
      n.kind = Kind::any_of;
      for (size_t i = 0; i < alts.size(); ++i) {
        DSV4_ASSIGN_OR_RETURN(uint32_t a, compile(alts[i], path + ".anyOf[" + std::to_string(i) + "]"));
        n.alternatives.push_back(a);
      }
      return add(std::move(n));
    }
    DSV4_ASSIGN_OR_RETURN(std::vector<std::string> types, types_of(s, path));
    if (s.contains("enum") || s.contains("const")) {
      const bool is_enum = s.contains("enum");
      const std::string key = is_enum ? "enum" : "const";
      DSV4_TRY(check_alone(s, path, key, {"type"}));
      const json values = is_enum ? s["enum"] : json::array({s["const"]});
      if (!values.is_array() || values.empty()) return bad("'" + path + ".enum' must be a non-empty array");
      std::vector<std::string> texts;
      for (const auto& v : values) {
        const bool typed = types.empty() || std::any_of(types.begin(), types.end(), [&](const std::string& t) {
                             return has_type(v, t);
                           });
        if (typed) texts.push_back(v.dump(-1, ' ', false, json::error_handler_t::replace));
      }
      if (texts.empty()) return bad("'" + path + "': no value of '" + key + "' has the schema's type");
      return literal(std::move(texts));
    }
    const bool object_words = s.contains("properties") || s.contains("required") || s.contains("additionalProperties");
    const bool array_words = s.contains("items") || s.contains("minItems") || s.contains("maxItems");
    if (types.empty()) {
      if (object_words && array_words)
        return bad("'" + path + "': a schema with both object and array keywords needs a 'type'");
      if (object_words) types = {"object"};
      else if (array_words) types = {"array"};
      else return any();
    }
    // integer is a subset of number: with both, number alone.
    if (std::count(types.begin(), types.end(), "number") > 0) std::erase(types, std::string("integer"));
    std::sort(types.begin(), types.end());
    types.erase(std::unique(types.begin(), types.end()), types.end());
    std::vector<uint32_t> alts;
    std::vector<std::string> words;  // literal leaves (boolean, null) merge into one node
    for (const auto& t : types) {
      if (t == "object") {
        DSV4_ASSIGN_OR_RETURN(uint32_t o, compile_object(s, path));
        alts.push_back(o);
      } else if (t == "array") {
        DSV4_ASSIGN_OR_RETURN(uint32_t a, compile_array(s, path));
        alts.push_back(a);
      } else if (t == "string" || t == "number" || t == "integer") {
        DSV4_ASSIGN_OR_RETURN(uint32_t x, simple(t == "string" ? Kind::string : t == "number" ? Kind::number : Kind::integer));
        alts.push_back(x);
      } else if (t == "boolean") {
        words.insert(words.end(), {"false", "true"});
      } else {
        words.push_back("null");
      }
    }
    if (!words.empty()) {
      DSV4_ASSIGN_OR_RETURN(uint32_t l, literal(std::move(words)));
      alts.push_back(l);
    }
    if (alts.size() == 1) return alts[0];
    JsonNode n;
    n.kind = Kind::any_of;
    n.alternatives = std::move(alts);
    return add(std::move(n));
  }

  Result<uint32_t> compile_object(const json& s, const std::string& path) {
    JsonNode n;
    n.kind = Kind::object;
    std::set<std::string> required;
    if (auto it = s.find("required"); it != s.end()) {
      if (!it->is_array()) return bad("'" + path + ".required' must be an array of strings");
      for (const auto& r : *it) {
        if (!r.is_string()) return bad("'" + path + ".required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    auto add_it = s.find("additionalProperties");
    if (add_it != s.end() && !add_it->is_boolean() && !add_it->is_object())
      return bad("'" + path + ".additionalProperties' must be a boolean or a schema");
    auto props = s.find("properties");
    if (props == s.end()) {
      if (!required.empty())
        return bad("'" + path + ".required' names '" + *required.begin() + "', which 'properties' does not declare");
      if (add_it == s.end() || add_it->is_object() || add_it->get<bool>()) {
        DSV4_ASSIGN_OR_RETURN(uint32_t v, add_it != s.end() && add_it->is_object()
                                              ? compile(*add_it, path + ".additionalProperties")
                                              : any());
        n.additional = int32_t(v);
      }
      return add(std::move(n));
    }
    if (!props->is_object()) return bad("'" + path + ".properties' must be an object");
    if (props->size() > kMaxObjectProperties)
      return bad("'" + path + ".properties': at most " + std::to_string(kMaxObjectProperties) + " properties per object");
    for (const auto& r : required)
      if (!props->contains(r)) return bad("'" + path + ".required' names '" + r + "', which 'properties' does not declare");
    // Sorted by key text, which is what the matcher's range narrowing needs.
    std::vector<std::tuple<std::string, uint32_t, bool>> fields;
    for (const auto& [name, sub] : props->items()) {
      DSV4_ASSIGN_OR_RETURN(uint32_t v, compile(sub, path + ".properties." + name));
      fields.emplace_back(json(name).dump(-1, ' ', false, json::error_handler_t::replace), v, required.count(name) > 0);
    }
    std::sort(fields.begin(), fields.end());
    for (size_t i = 0; i < fields.size(); ++i) {
      n.keys.push_back(std::get<0>(fields[i]));
      n.values.push_back(std::get<1>(fields[i]));
      if (std::get<2>(fields[i])) n.required |= uint64_t(1) << i;
    }
    return add(std::move(n));
  }

  Result<uint32_t> compile_array(const json& s, const std::string& path) {
    JsonNode n;
    n.kind = Kind::array;
    auto bound = [&](const char* key, uint32_t& out) -> Status {
      auto it = s.find(key);
      if (it == s.end()) return {};
      if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > int64_t(kMaxItemsBound))
        return bad("'" + path + "." + key + "' must be an integer between 0 and " + std::to_string(kMaxItemsBound));
      out = uint32_t(it->get<int64_t>());
      return {};
    };
    DSV4_TRY(bound("minItems", n.min_items));
    DSV4_TRY(bound("maxItems", n.max_items));
    if (n.max_items != kUnboundedItems && n.min_items > n.max_items)
      return bad("'" + path + "': minItems is larger than maxItems");
    if (auto it = s.find("items"); it != s.end()) {
      if (it->is_array()) return bad("'" + path + ".items': tuple items (an array of schemas) are not supported");
      DSV4_ASSIGN_OR_RETURN(n.items, compile(*it, path + ".items"));
    } else {
      DSV4_ASSIGN_OR_RETURN(n.items, any());
    }
    return add(std::move(n));
  }

  // leaves of every node; an any_of cycle (a $ref chain that never reaches a value) is refused.
  Status flatten_leaves() {
    std::vector<int> mark(g_.nodes.size(), 0);  // 0 new, 1 in progress, 2 done
    std::function<Status(uint32_t)> visit = [&](uint32_t id) -> Status {
      if (mark[id] == 2) return {};
      if (mark[id] == 1) return bad("'" + where_ + "': a $ref cycle never reaches a value");
      mark[id] = 1;
      JsonNode& n = g_.nodes[id];
      std::vector<uint32_t> leaves;
      if (n.kind != Kind::any_of) {
        leaves.push_back(id);
      } else {
        for (uint32_t a : std::vector<uint32_t>(n.alternatives)) {
          DSV4_TRY(visit(a));
          for (uint32_t l : g_.nodes[a].leaves)
            if (std::find(leaves.begin(), leaves.end(), l) == leaves.end()) leaves.push_back(l);
        }
      }
      if (leaves.size() > kMaxAlternatives)
        return bad("'" + where_ + "': a value has more than " + std::to_string(kMaxAlternatives) +
                   " alternatives (anyOf and type arrays flattened)");
      g_.nodes[id].leaves = std::move(leaves);
      mark[id] = 2;
      return {};
    };
    for (uint32_t i = 0; i < g_.nodes.size(); ++i) DSV4_TRY(visit(i));
    return {};
  }

  // A node is finite when some value of it is a finite text. Recursion can make a node
  // infinite (an object that requires itself); those are pruned so that the matcher never
  // enters a state that has no way to end.
  Status prune_infinite() {
    const size_t n = g_.nodes.size();
    std::vector<bool> finite(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < n; ++i) {
        if (finite[i]) continue;
        const JsonNode& x = g_.nodes[i];
        bool f = true;
        switch (x.kind) {
          case Kind::object:
            for (size_t k = 0; k < x.keys.size(); ++k)
              if ((x.required >> k & 1) && !finite[x.values[k]]) f = false;
            break;
          case Kind::array: f = x.min_items == 0 || finite[x.items]; break;
          case Kind::any_of:
            f = std::any_of(x.leaves.begin(), x.leaves.end(), [&](uint32_t l) { return bool(finite[l]); });
            break;
          default: break;
        }
        if (f) finite[i] = changed = true;
      }
    }
    if (!finite[g_.root]) return bad("'" + where_ + "': no finite JSON value satisfies the schema (a required recursion)");
    for (size_t i = 0; i < n; ++i) {
      JsonNode& x = g_.nodes[i];
      std::erase_if(x.leaves, [&](uint32_t l) { return !finite[l]; });
      if (x.kind == Kind::array && !finite[x.items]) x.max_items = 0;
      if (x.kind == Kind::object && !x.keys.empty()) {
        JsonNode kept;
        for (size_t k = 0; k < x.keys.size(); ++k) {
          if (!finite[x.values[k]]) continue;  // optional: a required one makes the object infinite
          if (x.required >> k & 1) kept.required |= uint64_t(1) << kept.keys.size();
          kept.keys.push_back(x.keys[k]);
          kept.values.push_back(x.values[k]);
        }
        x.keys = std::move(kept.keys);
        x.values = std::move(kept.values);
        x.required = kept.required;
      }
    }
    return {};
  }

  const json& doc_;
  const std::string where_;
  JsonGrammar g_;
  std::map<std::string, uint32_t> refs_;
  int32_t any_ = -1;
  int depth_ = 0;
};

}  // namespace

Result<std::shared_ptr<const JsonGrammar>> compile_json_schema(const nlohmann::json& schema, const std::string& where) {
  return Compiler(schema, where).run();
}

std::shared_ptr<const JsonGrammar> json_object_grammar() {
  static const std::shared_ptr<const JsonGrammar> g = [] {
    auto r = compile_json_schema(json{{"type", "object"}}, "schema");
    DSV4_CHECK(r.ok());
    return *r;
  }();
  return g;
}

}  // namespace dsv4::text
