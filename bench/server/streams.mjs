// Aggregate decode throughput of `dsv4 serve` with N concurrent streaming requests.
// Usage: node bench/server/streams.mjs BASE_URL N [MAX_TOKENS]
// Each request streams MAX_TOKENS tokens (ignore_eos) from a distinct short prompt; reports
// the total generated tokens / wall time, and the median time to first token.
const [base, nArg, maxArg] = process.argv.slice(2);
const n = Number(nArg);
const maxTokens = Number(maxArg ?? 64);

async function one(i) {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'dsv4-demo', prompt: `def function_${i}(x):`, max_tokens: maxTokens, temperature: 0,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
  });
  let ttft = null;
  let tokens = 0;
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body) {
    buf += dec.decode(chunk, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, k);
      buf = buf.slice(k + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const j = JSON.parse(line.slice(6));
      if (j.usage) tokens = j.usage.completion_tokens;
      else if (ttft === null && j.choices[0]?.text) ttft = performance.now() - t0;
    }
  }
  return { tokens, ttft };
}

const t0 = performance.now();
const results = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
const secs = (performance.now() - t0) / 1000;
const total = results.reduce((a, r) => a + r.tokens, 0);
const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
console.log(JSON.stringify({ streams: n, generated_tokens: total, seconds: +secs.toFixed(2),
  tokens_per_s: +(total / secs).toFixed(1), per_stream_tokens_per_s: +(total / secs / n).toFixed(1),
  median_ttft_ms: +ttfts[Math.floor(n / 2)].toFixed(0) }));
