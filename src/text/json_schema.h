// JSON Schema -> the grammar that constrained decoding enforces (structured outputs: OpenAI's
// response_format json_schema / json_object, Responses' text.format, Anthropic's
// output_config.format). The grammar is a graph of value nodes; text/json_matcher runs it over
// bytes as a pushdown automaton.
//
// The supported subset, and what a generated value looks like under it:
//   type (object, array, string, number, integer, boolean, null, or an array of these),
//   properties, required, additionalProperties, items, minItems / maxItems (at most
//   kMaxItemsBound), enum, const, anyOf, $ref to "#", "#/$defs/NAME" or "#/definitions/NAME"
//   (recursion allowed), and the annotations (title, description, default, examples, $schema,
//   $id, $comment, deprecated, readOnly, writeOnly, strict, name).
// Any other keyword is refused, naming it and where it is (pattern, format, minimum, oneOf, ...):
// the output could not be guaranteed to validate.
//   - Objects with `properties` hold only declared properties, whatever additionalProperties
//     says (OpenAI's strict mode requires `false`; for `true` or absent this is a subset of what
//     the schema allows, so the output still validates). Keys come in any order, each at most
//     once, every required one before `}`. Without `properties`, additionalProperties false
//     allows only `{}`, a schema gives the values of free keys, true or absent any values.
//   - Keys and enum / const values are written exactly as their compact JSON text (no escape
//     spelled differently).
//   - A node that can never hold a finite value (a required property of its own type) is
//     pruned; a schema with no finite value at all is refused.
// Values nest at most kMaxNesting objects / arrays deep (the server's own limit on request
// bodies is 128).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace dsv4::text {

inline constexpr uint32_t kMaxItemsBound = 1024;   // minItems / maxItems
inline constexpr size_t kMaxObjectProperties = 64;  // one bit each in the matcher's state
inline constexpr size_t kMaxGrammarNodes = 4096;
inline constexpr int kMaxSchemaDepth = 256;            // nested subschemas, $ref hops included
inline constexpr size_t kMaxAlternatives = 256;        // a value's alternatives once anyOf is flattened
inline constexpr int kMaxNesting = 64;
inline constexpr uint32_t kUnboundedItems = UINT32_MAX;

struct JsonNode {
  enum class Kind : uint8_t { object, array, string, number, integer, literal, any_of };
  Kind kind = Kind::any_of;
  // object: keys as their JSON text with quotes ("\"name\""), sorted bytewise; values[i] is the
  // node of keys[i]; bit i of `required` marks keys[i]. `additional` (only without keys): the
  // node of free keys' values, -1 = none.
  std::vector<std::string> keys;
  std::vector<uint32_t> values;
  uint64_t required = 0;
  int32_t additional = -1;
  // array
  uint32_t items = 0;
  uint32_t min_items = 0, max_items = kUnboundedItems;
  // literal: compact JSON texts, sorted bytewise, distinct.
  std::vector<std::string> literals;
  // any_of: alternatives as given.
  std::vector<uint32_t> alternatives;
  // Every node: the non-any_of nodes a value of this node starts as (itself, or any_of flattened).
  std::vector<uint32_t> leaves;
};

struct JsonGrammar {
  std::vector<JsonNode> nodes;
  uint32_t root = 0;
};

// A grammar for `schema` (a JSON Schema document). invalid_argument names the unsupported
// keyword or the problem and its location ("'schema.properties.age': unsupported keyword
// 'minimum'"); `where` is the location of the schema in the request, for messages.
Result<std::shared_ptr<const JsonGrammar>> compile_json_schema(const nlohmann::json& schema, const std::string& where);
// Any JSON object (response_format json_object).
std::shared_ptr<const JsonGrammar> json_object_grammar();

}  // namespace dsv4::text
