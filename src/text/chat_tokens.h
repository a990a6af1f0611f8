// Fixed strings of the DeepSeek-V4 prompt format (spec §7.2-7.3; values from
// /work/shared/data/dsv4-tokenizer/prompt-constants.json) and of V4.1's (v4.1 §11.2-11.5, where it
// differs). Shared by the chat renderer and the completion parser.
#pragma once

#include <string_view>

namespace dsv4::text::chat {

inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kLatestReminder = "<｜latest_reminder｜>";
inline constexpr std::string_view kThinkStart = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
// V4.1 only (v4.1 §11.1-11.2): opens the conversation (in thinking mode, or when it starts with a
// system message) and every mid-conversation system message. Id 128799 in V4.1's tokenizer.
inline constexpr std::string_view kSystem = "<｜System｜>";
// V4.1's image placeholder (v4.1 §11.5, id 129264): the vision path expands it into an image
// span, so user text must never contain it.
inline constexpr std::string_view kImagePlaceholder = "<｜deepseek_image｜>";

inline constexpr std::string_view kToolResultOpen = "<tool_result>";
inline constexpr std::string_view kToolResultClose = "</tool_result>";

// The tags of the assistant's DSML tool-call block. V4 names them tool_calls / invoke /
// parameter (spec §7.3); V4.1 puts a space inside every tag name: " calls", " invoke",
// " parameter" (v4.1 §11.3). Which one a revision writes: text::dsml_tags (encoder_revision.h).
struct DsmlTags {
  std::string_view calls_open, calls_close;
  std::string_view invoke_open_prefix, invoke_close;  // <…invoke name="NAME">
  std::string_view param_open_prefix, param_close;    // <…parameter name="K" string="true|false">
};
inline constexpr DsmlTags kDsmlV4{
    "<｜DSML｜tool_calls>",        "</｜DSML｜tool_calls>", "<｜DSML｜invoke name=\"",
    "</｜DSML｜invoke>",           "<｜DSML｜parameter name=\"", "</｜DSML｜parameter>",
};
inline constexpr DsmlTags kDsmlV41{
    "<｜DSML｜ calls>",            "</｜DSML｜ calls>",      "<｜DSML｜ invoke name=\"",
    "</｜DSML｜ invoke>",          "<｜DSML｜ parameter name=\"", "</｜DSML｜ parameter>",
};
// The separator the encoder writes between content and the block; the parser's cue.
inline constexpr std::string_view kBeforeToolCalls = "\n\n";

// The tools section of a system or developer message: an intro naming the block's tags, an
// example block in the revision's tags (both written by the renderer from DsmlTags), the rules
// below, one JSON schema per line, then kToolsSectionAfter. The words are the same in V4 and
// V4.1; only the tag names differ (v4.1 §11.3).
inline constexpr std::string_view kToolsIntro =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"";
inline constexpr std::string_view kToolsIntroEnd = "\" block like the following:\n\n";
inline constexpr std::string_view kToolsRules =
    "\n\nString parameters should be specified as is and set `string=\"true\"`. For all other types (numbers, "
    "booleans, arrays, objects), pass the value in JSON format and set `string=\"false\"`.\n\nIf thinking_mode is "
    "enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any "
    "tool calls or final response.\n\nOtherwise, output directly after </think> with tool calls or final "
    "response.\n\n### Available Tool Schemas\n\n";
inline constexpr std::string_view kToolsSectionAfter =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";

inline constexpr std::string_view kResponseFormatPrefix =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

// V4.1's effort line (v4.1 §11.2 rule 1): kEffortNumberBefore + N (1..100) + kEffortNumberAfter.
inline constexpr std::string_view kEffortNumberBefore = "Reasoning Effort: ";
inline constexpr std::string_view kEffortNumberAfter =
    " (range 1-100, the higher the value, the more thorough the reasoning)\n\n";

inline constexpr std::string_view kEffortAbsoluteMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\nYou MUST be very thorough in your thinking and "
    "comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against "
    "all potential paths, edge cases, and adversarial scenarios.\nExplicitly write out your entire deliberation "
    "process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure "
    "absolutely no assumption is left unchecked.\n\n";
inline constexpr std::string_view kEffortBeyondMax =
    "Reasoning Effort: Beyond maximum — exhaustive, relentless, and uncompromising.\nYou MUST reason with the utmost "
    "depth and rigor, leaving absolutely nothing to chance: exhaustively decompose the problem into its most "
    "fundamental components, trace every causal chain to its root, and resolve the underlying cause rather than any "
    "surface symptom.\nDo not stop reasoning until you have independently verified the solution from multiple "
    "angles and are certain that no assumption remains unchecked and no error remains undiscovered.\n\n";

}  // namespace dsv4::text::chat
