// Building elements without innerHTML: every value from the server goes in as text, so nothing a
// receiver answers or an alert carries can become markup.

/**
 * h('button', { class: 'primary', onclick: f, 'aria-label': '…' }, 'Text', child, …)
 * Attributes starting with `on` become listeners; `false`/null attributes are left out;
 * children may be strings, numbers, nodes, arrays, or null (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A time as the browser's local time, with the exact UTC value in `datetime`. */
export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString());
}

/** JSON text pretty-printed when it parses, as it came otherwise. */
export function pretty(text) {
  if (text === null || text === undefined) return '';
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
