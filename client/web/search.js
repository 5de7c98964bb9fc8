// Fuzzy matching for the search box: exact substrings rank first, then every query word found,
// then the query's letters in order within a short span (so "hlo wrld" finds "hello world").

function norm(s) {
    return String(s || '').toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
}

/* Returns {score, start, end} (match range in the original string) or null. Higher is better. */
export function fuzzy_match(query, text) {
    const q = norm(query).trim();
    const t = norm(text);
    if (!q || !t) return null;
    /* NFKD can change lengths; ranges are only exact for text whose length survives. */
    const exact_ranges = t.length === String(text).length;
    const i = t.indexOf(q);
    if (i >= 0) {
        return { score: 1000 - Math.min(i, 500), start: exact_ranges ? i : -1, end: exact_ranges ? i + q.length : -1 };
    }
    const words = q.split(/\s+/).filter(Boolean);
    if (words.length > 1 && words.every((w) => t.includes(w))) return { score: 600, start: -1, end: -1 };
    /* Subsequence within a span of at most 3x the query length. */
    const chars = Array.from(q.replace(/\s+/g, ''));
    if (chars.length < 3) return null;
    let best = null;
    for (let s = t.indexOf(chars[0]); s >= 0; s = t.indexOf(chars[0], s + 1)) {
        let pos = s;
        let ok = true;
        for (let k = 1; k < chars.length; k++) {
            pos = t.indexOf(chars[k], pos + 1);
            if (pos < 0) { ok = false; break; }
        }
        if (!ok) break;
        const span = pos - s + 1;
        if (span <= chars.length * 3 && (!best || span < best.span)) best = { span, s, e: pos + 1 };
    }
    if (!best) return null;
    return { score: 400 - (best.span - chars.length) * 5, start: exact_ranges ? best.s : -1, end: exact_ranges ? best.e : -1 };
}

/* Start of this calendar week (Monday 00:00 local) and of this month. */
export function range_start(when, now = new Date()) {
    if (when === 'week') {
        const d = new Date(now.getFullYear(), now.getMonth(), now.getDate());
        const dow = (d.getDay() + 6) % 7;
        d.setDate(d.getDate() - dow);
        return d.getTime();
    }
    if (when === 'month') return new Date(now.getFullYear(), now.getMonth(), 1).getTime();
    return null;
}

/* Local midnight of a "YYYY-MM-DD" date (an <input type=date> value), `plus` days later; else null. */
export function day_start(ymd, plus = 0) {
    const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(ymd || '');
    if (!m) return null;
    const t = new Date(+m[1], +m[2] - 1, +m[3] + plus).getTime();
    return Number.isNaN(t) ? null : t;
}
