// The running-sequence gauge of a live `dsv4 serve`, read from /metrics, for the client tests
// that check a request's sequence is taken and freed.

export async function runningSequences(root, headers) {
  const r = await fetch(`${root}/metrics`, { headers });
  const m = (await r.text()).match(/^dsv4_running_sequences (\d+)$/m);
  return m ? Number(m[1]) : -1;
}

// Polls the gauge until it reads `count` (at most `tries` reads, `ms` apart); returns the last
// value read.
export async function waitForRunning(root, headers, count, tries = 100, ms = 100) {
  let running = -1;
  for (let i = 0; i < tries; i++) {
    running = await runningSequences(root, headers);
    if (running === count) break;
    await new Promise((r) => setTimeout(r, ms));
  }
  return running;
}
