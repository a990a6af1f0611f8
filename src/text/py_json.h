// JSON text exactly as Python's json.dumps(obj, ensure_ascii=False) writes it, which is how the
// official V4 encoder serializes tool schemas, response formats and non-string tool arguments
// (spec §7.3; PROMPT-FORMAT.md §5): separators ", " and ": ", keys in input order, non-ASCII
// kept, control characters as \uXXXX, floats as Python repr.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dsv4::text {

std::string py_json_dumps(const nlohmann::ordered_json& value);
// The string part only: "..." with Python's escapes.
void py_json_append_string(std::string& out, const std::string& s);
// Python repr() of a double ("1.0", "1e-05", "1e+16", "NaN", "Infinity").
std::string py_float_repr(double v);

}  // namespace dsv4::text
