// The Collection view: a collection of the service's store (GET /v1/collections) searched by a text, an
// image or one of its items (POST /v1/search), results in the API's order with both scores. Image
// items show the service's thumbnail (GET …/items/{id}/image, fetched with the API key into a blob URL,
// as an <img> cannot send it) or their own URL. The service ranks; the page only shows.

import { call, fetchBlob } from './api.js';

const $ = (id) => document.getElementById(id);
const isUrl = (s) => /^https?:\/\/\S+$/i.test(s);
/** Thumbnails kept per collection before the ones not on screen are let go. */
const THUMB_CACHE = 300;

/**
 * @param {object} ctx what the page shares: active() (is this view shown), models() (GET /models'
 *   list), needKey(err) (401: ask for a key), bar() and text() (the page's score row and element makers)
 */
export function collectionView(ctx) {
  const { bar, text } = ctx;
  const cs = {
    collections: [],
    name: '',
    loaded: false,
    listAbort: null,
    /** {kind: 'text', text} | {kind: 'image', name, value, thumb, blob} | {kind: 'id', id} */
    query: null,
    /** what the shown results answer (the request body as JSON), and them */
    key: '',
    results: [],
    busy: null,
    /** `collection \0 id` → {url, err, promise} */
    thumbs: new Map(),
    /** metadata field → the JSON type of the values seen in results (how to type a filter value) */
    types: new Map(),
  };

  const current = () => cs.collections.find((c) => c.name === cs.name);
  const modelOf = (c) => ctx.models().find((m) => m.name === c.model);

  // ---- the collections ----

  async function load() {
    cs.listAbort?.abort();
    const abort = (cs.listAbort = new AbortController());
    $('collection-error').textContent = '';
    status('Loading the collections…');
    try {
      cs.collections = await call('/v1/collections', { signal: abort.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      status('');
      if (e.status === 401) return ctx.needKey(e);
      cs.collections = [];
      fillPicker();
      $('collection-error').textContent = e.text;
      return;
    } finally {
      if (cs.listAbort === abort) cs.listAbort = null;
    }
    cs.loaded = true;
    status(cs.collections.length ? '' : 'No collections in this service’s store: index some with albef-embed index.');
    if (!cs.collections.some((c) => c.name === cs.name)) switchTo(cs.collections[0]?.name ?? '');
    else {
      fillPicker();
      showCollection();
      cs.key = '';
      search();
    }
  }

  function fillPicker() {
    const select = $('collection-name');
    select.replaceChildren(
      ...cs.collections.map(
        (c) =>
          new Option(
            `${c.name} — ${c.count} ${c.modality}${c.count === 1 ? '' : 's'}`,
            c.name,
            false,
            c.name === cs.name,
          ),
      ),
    );
    select.disabled = cs.collections.length === 0;
  }

  function switchTo(name) {
    for (const t of cs.thumbs.values()) if (t.url?.startsWith('blob:')) URL.revokeObjectURL(t.url);
    cs.thumbs.clear();
    cs.types.clear();
    cs.name = name;
    // An item of the collection before is no query for this one.
    if (cs.query?.kind === 'id') setQuery(textQuery());
    cs.key = '';
    cs.results = [];
    fillPicker();
    showCollection();
    render();
    search();
  }

  /** Its model, modality, count and index; the filter's fields; whether the re-rank switch applies. */
  function showCollection() {
    const c = current();
    $('collection-info').textContent = c
      ? `model ${c.model} · ${c.count} ${c.modality}${c.count === 1 ? '' : 's'} · index ${c.index}`
      : '';
    const field = $('c-filter-field');
    const was = field.value;
    field.replaceChildren(
      new Option('(no filter)', ''),
      ...(c?.metadata_fields ?? []).map((f) => new Option(f, f, false, f === was)),
    );
    field.disabled = !c?.metadata_fields.length;
    $('c-filter-value').disabled = field.disabled;
    showRerank();
  }

  /** The switch: a text query against images or an image query against texts, on a model that re-ranks. */
  function rerankState() {
    const c = current();
    const q = cs.query;
    if (!c || !q) return { on: false, note: '' };
    const modality = q.kind === 'id' ? c.modality : q.kind;
    if (modality === c.modality)
      return {
        on: false,
        note: `Re-ranking is for a text query against images or an image query against texts (this is ${q.kind === 'id' ? 'an item' : `a ${modality}`} against ${c.modality}s).`,
      };
    const m = modelOf(c);
    if (!m) return { on: false, note: `This service does not serve model ${c.model}, which made this collection.` };
    if (!m.capabilities.includes('rerank'))
      return { on: false, note: `Model ${c.model} has no image–text matching part: no re-ranking.` };
    return { on: true, note: '' };
  }

  function showRerank() {
    const r = rerankState();
    $('c-rerank-row').hidden = !r.on;
    $('c-rerank-note').textContent = r.note;
  }

  // ---- the query ----

  const textQuery = () => {
    const t = $('c-query').value.trim();
    return t ? { kind: 'text', text: t } : null;
  };

  function setQuery(q) {
    if (cs.query?.blob) URL.revokeObjectURL(cs.query.thumb);
    cs.query = q;
    const chip = $('c-chip');
    const img = $('c-chip-img');
    chip.hidden = !q || q.kind === 'text';
    if (q?.kind === 'image') {
      $('c-chip-text').textContent = `Image: ${q.name}`;
      img.src = q.thumb;
      img.hidden = false;
    } else if (q?.kind === 'id') {
      $('c-chip-text').textContent = `More like ${q.id}`;
      const thumb = cs.thumbs.get(thumbKey(q.id))?.url;
      img.hidden = !thumb;
      if (thumb) img.src = thumb;
    } else {
      img.hidden = true;
      img.removeAttribute('src');
    }
    if (q && q.kind !== 'text') $('c-query').value = '';
    showRerank();
  }

  function imageFile(file) {
    const name = file.name || 'pasted image';
    const reader = new FileReader();
    reader.onload = () => {
      setQuery({ kind: 'image', name, value: reader.result, thumb: URL.createObjectURL(file), blob: true });
      search();
    };
    reader.onerror = () => ($('collection-error').textContent = `cannot read ${name}`);
    reader.readAsDataURL(file);
  }

  function imageUrl(url) {
    setQuery({ kind: 'image', name: url, value: url, thumb: url });
    search();
  }

  let typing;
  $('c-query').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      setQuery(textQuery());
      search();
    }, 250);
  });
  $('c-query').addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    clearTimeout(typing);
    setQuery(textQuery());
    search();
  });
  $('c-file').addEventListener('change', () => {
    const file = $('c-file').files[0];
    $('c-file').value = '';
    if (file) imageFile(file);
  });
  $('c-chip-clear').addEventListener('click', () => {
    setQuery(textQuery());
    search();
    $('c-query').focus();
  });
  $('collection-name').addEventListener('change', () => switchTo($('collection-name').value));
  $('collection-reload').addEventListener('click', load);
  let settling;
  for (const id of ['c-rerank', 'c-rerank-n', 'c-top-k', 'c-filter-field', 'c-filter-value'])
    $(id).addEventListener('change', () => search());
  // Numbers and the filter value also while typing, once it pauses.
  for (const id of ['c-rerank-n', 'c-top-k', 'c-filter-value']) {
    $(id).addEventListener('input', () => {
      clearTimeout(settling);
      settling = setTimeout(search, 300);
    });
  }
  $('c-filter-value').addEventListener('keydown', (ev) => ev.key === 'Enter' && search());

  // ---- searching ----

  /** A filter value as typed: the type the field's values have in results seen, else 3 → number, true → boolean, "3" → text. */
  function filterValue(field, raw) {
    const seen = cs.types.get(field);
    const quoted = /^"(.*)"$/.exec(raw);
    if (quoted) return quoted[1];
    if (seen === 'string') return raw;
    if ((seen === 'number' || seen === undefined) && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw)) return Number(raw);
    if ((seen === 'boolean' || seen === undefined) && (raw === 'true' || raw === 'false')) return raw === 'true';
    return raw;
  }

  function request() {
    const c = current();
    const q = cs.query;
    if (!c || !q) return undefined;
    const body = {
      collection: c.name,
      query: q.kind === 'text' ? q.text : q.kind === 'image' ? { image: q.value } : { id: q.id },
      top_k: Math.min(1000, Math.max(1, Math.round(Number($('c-top-k').value)) || 24)),
    };
    if (rerankState().on && $('c-rerank').checked)
      body.rerank = Math.min(256, Math.max(1, Math.round(Number($('c-rerank-n').value)) || 16));
    const field = $('c-filter-field').value;
    const raw = $('c-filter-value').value.trim();
    if (field && raw) body.filter = { [field]: filterValue(field, raw) };
    return body;
  }

  async function search() {
    if (!ctx.active() || !cs.loaded) return;
    const body = request();
    const key = body ? JSON.stringify(body) : '';
    // The same request: its answer is shown, or on its way.
    if (key === cs.key) return;
    cs.busy?.abort();
    cs.key = key;
    $('collection-error').textContent = '';
    if (!body) {
      cs.busy = null;
      cs.results = [];
      return render();
    }
    const abort = (cs.busy = new AbortController());
    render();
    try {
      const answer = await call('/v1/search', { json: body, signal: abort.signal });
      if (cs.busy !== abort) return;
      cs.results = answer.results;
      for (const h of cs.results)
        for (const [f, v] of Object.entries(h.metadata ?? {})) if (!cs.types.has(f)) cs.types.set(f, typeof v);
      status(
        `${cs.results.length} result${cs.results.length === 1 ? '' : 's'}${body.rerank ? `, the first ${Math.min(body.rerank, cs.results.length)} re-ranked by the ITM match logit` : ''}`,
      );
    } catch (e) {
      if (e.name === 'AbortError' || cs.busy !== abort) return;
      cs.results = [];
      cs.key = '';
      status('');
      if (e.status === 401) {
        cs.busy = null;
        return ctx.needKey(e);
      }
      $('collection-error').textContent = e.text;
    }
    cs.busy = null;
    render();
  }

  // ---- thumbnails ----

  const thumbKey = (id) => `${cs.name}\0${id}`;

  function thumb(hit) {
    const k = thumbKey(hit.id);
    let t = cs.thumbs.get(k);
    if (t) return t;
    if (isUrl(hit.source ?? '')) t = { url: hit.source, promise: Promise.resolve() };
    else {
      t = { url: '', promise: undefined };
      const size = Math.min(1024, Math.round(256 * (window.devicePixelRatio || 1)));
      const path = `/v1/collections/${encodeURIComponent(cs.name)}/items/${encodeURIComponent(hit.id)}/image?size=${size}`;
      t.promise = fetchBlob(path).then(
        (blob) => {
          // Not for a collection left meanwhile (its cards are gone): no blob URL to leak.
          if (cs.thumbs.get(k) === t) t.url = URL.createObjectURL(blob);
        },
        (e) => {
          if (e.status === 401) ctx.needKey(e);
          t.err = e;
          // Shown on this card; asked again when the item is shown again (after a key, a restored file).
          if (cs.thumbs.get(k) === t) cs.thumbs.delete(k);
        },
      );
    }
    cs.thumbs.set(k, t);
    if (cs.thumbs.size > THUMB_CACHE) {
      const shown = new Set(cs.results.map((h) => thumbKey(h.id)));
      for (const [key, old] of cs.thumbs) {
        if (shown.has(key)) continue;
        if (old.url.startsWith('blob:')) URL.revokeObjectURL(old.url);
        cs.thumbs.delete(key);
      }
    }
    return t;
  }

  function showThumb(li, img, hit) {
    const t = thumb(hit);
    li.dataset.thumb = 'loading';
    img.addEventListener('load', () => (li.dataset.thumb = 'ready'));
    img.addEventListener('error', () => {
      li.dataset.thumb = 'error';
      img.classList.add('broken');
    });
    void t.promise.then(() => {
      if (t.err) {
        li.dataset.thumb = 'error';
        img.classList.add('broken');
        li.querySelector('.thumb-error').textContent = t.err.text;
      } else img.src = t.url;
    });
  }

  // ---- showing it ----

  function status(s) {
    $('collection-status').textContent = s;
  }

  function render() {
    const list = $('c-results');
    const q = cs.query;
    list.setAttribute('aria-busy', String(cs.busy !== null));
    list.dataset.collection = cs.name;
    list.dataset.query = !q ? '' : q.kind === 'text' ? q.text : q.kind === 'image' ? `image:${q.name}` : `id:${q.id}`;
    const req = cs.key ? JSON.parse(cs.key) : undefined;
    list.dataset.rerank = String(req?.rerank ?? 0);
    list.dataset.filter = req?.filter ? JSON.stringify(req.filter) : '';
    if (cs.busy) return;
    const c = current();
    // Cosine bars span the scores shown, worst to best: they show the ranking; the numbers are exact.
    const itcs = cs.results.map((h) => h.itc);
    const lo = Math.min(...itcs);
    const hi = Math.max(...itcs);
    const span = (v) => (hi > lo ? 0.08 + (0.92 * (v - lo)) / (hi - lo) : 1);
    list.replaceChildren(...cs.results.map((h, i) => card(c, h, i + 1, span)));
  }

  function card(c, h, rank, span) {
    const li = document.createElement('li');
    li.className = `card${c.modality === 'text' ? ' text-item' : ''}`;
    li.dataset.id = h.id;
    li.dataset.score = String(h.score);
    li.dataset.itc = String(h.itc);
    if (h.itm_prob !== undefined) {
      li.dataset.itm = String(h.itm_prob);
      li.dataset.logit = String(h.itm_logits[1]);
    }
    const like = document.createElement('button');
    like.type = 'button';
    like.className = 'like';
    like.setAttribute('aria-describedby', 'like-hint');
    like.title = 'More like this';
    like.addEventListener('click', () => {
      setQuery({ kind: 'id', id: h.id });
      search();
    });
    const head = document.createElement('div');
    head.className = 'head';
    head.append(text('span', 'rank', `#${rank}`), text('span', 'name', h.id));
    head.querySelector('.name').title = h.id;
    if (c.modality === 'image') {
      const img = document.createElement('img');
      img.alt = '';
      img.referrerPolicy = 'no-referrer';
      like.append(img);
      like.setAttribute('aria-label', `More like ${h.id}`);
      li.append(like, head);
      showThumb(li, img, h);
    } else {
      like.classList.add('item-text');
      like.textContent = h.source ?? h.id;
      li.append(head, like);
    }
    const body = document.createElement('div');
    if (c.modality === 'image') body.append(text('p', 'error thumb-error', ''));
    if (h.itm_prob !== undefined) {
      body.append(
        bar('ITM', h.itm_prob, h.itm_prob, {}, 'prob'),
        text('p', 'muted logit', `match logit ${h.itm_logits[1].toFixed(4)}`),
      );
    }
    body.append(bar('itc', h.itc, span(h.itc)));
    body.append(details(c, h));
    li.append(body);
    return li;
  }

  /** The item's source and metadata, on demand. */
  function details(c, h) {
    const d = document.createElement('details');
    d.append(text('summary', '', c.modality === 'image' ? 'Source and metadata' : 'Metadata'));
    const dl = document.createElement('dl');
    if (c.modality === 'image' && h.source !== undefined) dl.append(text('dt', '', 'source'), text('dd', '', h.source));
    const meta = text('pre', '', h.metadata ? JSON.stringify(h.metadata, null, 2) : 'none');
    const dd = document.createElement('dd');
    dd.append(meta);
    dl.append(text('dt', '', 'metadata'), dd);
    d.append(dl);
    return d;
  }

  return {
    /** The view was opened (or the page got its API key): list the collections the first time. */
    shown() {
      if (!cs.loaded && !cs.listAbort) return load();
      showRerank();
      search();
    },
    /** GET /models answered: which models re-rank. */
    modelsChanged() {
      showRerank();
      search();
    },
    /** A dropped or pasted image, or an image URL: the query. */
    files(files) {
      if (files.length) imageFile(files[0]);
    },
    pastedText(s) {
      const t = s.trim();
      if (isUrl(t)) return imageUrl(t);
      $('c-query').value = t;
      setQuery(textQuery());
      search();
    },
  };
}
