// Fakes for the client tests: fetch, timers, storage and ids, all under the test's control.

export function response(status, body = {}, headers = {}) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name) => lower[name.toLowerCase()] ?? null },
    json: async () => body,
  };
}

export function accepted(count) {
  return response(202, { accepted: count, event_ids: [], events: [] });
}

/** A fetch that answers from a script of responses (or errors) and records every call. */
export function fakeFetch(...script) {
  const calls = [];
  const fetch = async (url, init) => {
    const call = { url, init, body: init.body === undefined ? null : JSON.parse(init.body) };
    calls.push(call);
    const next = script.length ? script.shift() : accepted(call.body.events.length);
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next(call) : next;
  };
  return { fetch, calls };
}

/** setTimeout / clearTimeout that only run when the test says so. */
export function fakeTimers() {
  let nextId = 1;
  const pending = new Map();
  return {
    pending,
    setTimeout(callback, ms) {
      const id = nextId++;
      pending.set(id, { callback, ms });
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    delays() {
      return [...pending.values()].map((t) => t.ms);
    },
    /** Run every pending timer once (timers they set stay pending). */
    runAll() {
      const due = [...pending.entries()];
      pending.clear();
      for (const [, timer] of due) timer.callback();
    },
  };
}

export function memoryStorage() {
  const data = new Map();
  return {
    data,
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
  };
}

export function sequentialIds(prefix = "id") {
  let n = 0;
  return () => `${prefix}-${++n}`;
}

/** A clock the test moves by hand (milliseconds). */
export function manualClock(start = Date.UTC(2025, 2, 14, 9, 0, 0)) {
  const clock = { t: start, now: () => clock.t, advance: (ms) => { clock.t += ms; } };
  return clock;
}

/** Let pending promise callbacks run. */
export async function settle(rounds = 10) {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}
