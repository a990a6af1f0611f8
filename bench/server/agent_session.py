#!/usr/bin/env python3
"""Replays an agent-like session against a running `dsv4 serve` and prints, per request, the
prompt tokens, the tokens taken from the prefix cache and the tokens actually prefilled.

Usage: agent_session.py --port P [--turns 8] [--max-tokens 32] [--label NAME]

The session is what a coding agent sends: a long system prompt (instructions and tool
descriptions), then one request per turn, each repeating the whole conversation with the
previous answer appended and a new user message (a tool result or an instruction). The server's
encoder drops the reasoning of earlier turns, so each prompt diverges from the previous
prompt + output inside the last assistant turn: a cache that only continues finished sequences
never hits. Greedy decoding, so runs are comparable. Prints figures; asserts nothing.
Python 3 standard library only.
"""

import argparse
import http.client
import json
import time

SYSTEM = ("You are a coding agent working in a Python repository. Follow the instructions, keep "
          "answers short, and explain each change you make. ") + " ".join(
    f"Tool {i}: read_file(path) returns the text of the file at path; run_tests(pattern) runs the "
    f"tests whose names match the pattern and returns their report; edit_file(path, old, new) "
    f"replaces old with new in the file." for i in range(12))

USER_TURNS = [
    "Write a function fibonacci(n) that returns the n-th Fibonacci number.",
    "The tests report: test_fibonacci_zero failed, fibonacci(0) returned 1. Fix it.",
    "Now add a docstring and type hints.",
    "The tests pass. Add a memoized version fib_memo(n) using functools.lru_cache.",
    "run_tests('fib') output: 4 passed in 0.02s. Write a test for negative input.",
    "The new test fails with RecursionError. Make fibonacci raise ValueError for n < 0.",
    "Summarize the changes you made in this session as a bulleted list.",
    "Rename fib_memo to fibonacci_cached and update the tests.",
    "Add an iterative version and compare the three in a docstring example.",
    "Done. Write the commit message.",
]


def chat(port, messages, max_tokens):
    body = json.dumps({"model": "dsv4-demo", "messages": messages, "max_tokens": max_tokens,
                       "temperature": 0})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.monotonic()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    elapsed = time.monotonic() - t0
    conn.close()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {data}")
    return data, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    messages = [{"role": "system", "content": SYSTEM}]
    total_prompt = total_cached = 0
    print(f"{args.label}: turn  prompt  cached  prefilled  seconds")
    for turn in range(args.turns):
        messages.append({"role": "user", "content": USER_TURNS[turn % len(USER_TURNS)]})
        data, elapsed = chat(args.port, messages, args.max_tokens)
        usage = data["usage"]
        prompt = usage["prompt_tokens"]
        cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        total_prompt += prompt
        total_cached += cached
        print(f"{args.label}: {turn + 1:4d}  {prompt:6d}  {cached:6d}  {prompt - cached:9d}  {elapsed:7.2f}")
        msg = data["choices"][0]["message"]
        reply = {"role": "assistant", "content": msg.get("content") or ""}
        if msg.get("reasoning_content"):
            reply["reasoning_content"] = msg["reasoning_content"]
        messages.append(reply)
    rate = total_cached / total_prompt if total_prompt else 0.0
    print(f"{args.label}: total prompt {total_prompt}, cached {total_cached}, prefilled "
          f"{total_prompt - total_cached}, hit rate {rate:.1%}")


if __name__ == "__main__":
    main()
