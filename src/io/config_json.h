// Typed readers of config.json values, shared by the V4 parser (config.cpp) and the V4.1 one
// (config_v41.cpp). Internal to io: nothing outside the config parsers sees raw JSON.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/config.h"

namespace dsv4::io {

// A present key of the wrong type is an error; so is a missing (or null) required key.
Status get_int(const nlohmann::json& j, const char* key, int64_t* out, bool required = true);
Status get_num(const nlohmann::json& j, const char* key, double* out, bool required = true);
// A required array of integers.
Status get_int_list(const nlohmann::json& j, const char* key, std::vector<int64_t>* out);
// A required string equal to `want` (the released spelling).
Status expect_string(const nlohmann::json& j, const char* key, const char* want);
// v in [1, max], else invalid_argument naming the key.
Status positive(const char* key, int64_t v, int64_t max = int64_t(1) << 40);

// The keys V4 and V4.1's text_config share, by the same names (spec §2.1, v4.1 §2.1). With
// all_required false, hc_eps, rms_norm_eps, swiglu_limit and num_nextn_predict_layers may be
// absent (the V4 preview's fixtures omit some); V4.1's released config has every one.
Status read_shared_fields(const nlohmann::json& j, bool all_required, ModelConfig* c);
// compress_ratios, each entry one of `allowed` (`family` names the model in the message).
Status read_compress_ratios(const nlohmann::json& j, std::initializer_list<int> allowed, const char* family,
                            ModelConfig* c);
// Ranges of the shared fields, which every later size computation relies on, and the limits both
// architectures have (one shared expert, heads in whole output groups, rope and eps ranges).
Status check_shared_fields(const ModelConfig& c);

// The dspark_* keys shared by the 0731/0813 releases and V4.1 (addendum §A2.1, v4.1 §2.1): read,
// then checked against the main stack (needs num_hidden_layers, vocab_size, compress_ratios).
Status parse_dspark(const nlohmann::json& j, DsparkConfig* d);
Status check_dspark(const ModelConfig& c);

// v4.1 §2.1: the nested root config of V4.1-Flash into `c` (shared fields and c->v41).
Status parse_v41_config(const nlohmann::json& root, ModelConfig* c);

}  // namespace dsv4::io
