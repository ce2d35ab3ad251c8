// Reading /metrics (Prometheus text format 0.0.4): samples, rates between
// two scrapes, and quantiles from histogram buckets.

/** Parses the text into [{name, labels: {k: v}, value}]. */
export function parse(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (x, c) => (c === "n" ? "\n" : c));
    }
    const v = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

export function pick(samples, name, match = {}) {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

export function scalar(samples, name, match) {
  const s = pick(samples, name, match);
  return s.length ? s.reduce((a, x) => a + x.value, 0) : null;
}

/**
 * The q-quantile (0..1) of a histogram from cumulative buckets
 * [{le, count}], interpolating linearly inside the bucket it falls in, as
 * Prometheus' histogram_quantile does. null without observations.
 */
export function quantile(q, buckets) {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  if (!b.length) return null;
  const total = b[b.length - 1].count;
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe; // above the last finite bound: its bound is the best we know
      const inBucket = count - prevCount;
      return inBucket ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/**
 * Per route: requests per second and latency quantiles over the window
 * between two scrapes (prev may be null: then since the server started,
 * and rates are unknown). Returns [{route, rate, errors, p50, p95, p99, count}].
 */
export function byRoute(prev, cur, seconds) {
  const routes = new Map();
  const entry = (r) => {
    if (!routes.has(r)) routes.set(r, { route: r, total: 0, errors: 0, buckets: new Map() });
    return routes.get(r);
  };
  const add = (samples, sign) => {
    for (const s of samples) {
      if (s.name === "transitd_http_requests_total") {
        const e = entry(s.labels.route);
        e.total += sign * s.value;
        if (/^(5|other)/.test(s.labels.status)) e.errors += sign * s.value;
      } else if (s.name === "transitd_http_request_duration_seconds_bucket") {
        const e = entry(s.labels.route);
        const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
        e.buckets.set(le, (e.buckets.get(le) || 0) + sign * s.value);
      }
    }
  };
  add(cur, 1);
  if (prev) add(prev, -1);
  const rows = [];
  for (const e of routes.values()) {
    if (e.total <= 0) continue;
    const buckets = [...e.buckets].map(([le, count]) => ({ le, count }));
    rows.push({
      route: e.route,
      count: e.total,
      rate: prev && seconds > 0 ? e.total / seconds : null,
      errors: e.errors,
      p50: quantile(0.5, buckets),
      p95: quantile(0.95, buckets),
      p99: quantile(0.99, buckets),
    });
  }
  return rows.sort((a, b) => b.count - a.count);
}
