// The page: images added by the user are embedded once each (POST /embed/image) and kept here; a
// query costs one POST /embed/text, ranked by cosine in the page; the switch re-ranks the top ones
// with POST /v1/rerank; Classify asks POST /classify per image. One request per image, so an image
// the API refuses shows the API's words and the others go on. Collection searches a collection of the
// service's store instead (collection.js).

import { ApiError, apiKey, call, cosine, decodeVector } from './api.js';
import { collectionView } from './collection.js';

const $ = (id) => document.getElementById(id);
const CONCURRENCY = 3;

const state = {
  models: [],
  model: '',
  /** {id, name, file?, url?, thumb, li, m: per-model {vec, err, busy}, c: per-classification {result, err, busy}} */
  images: [],
  nextId: 0,
  query: '',
  queryModel: '',
  queryVec: null,
  queryAbort: null,
  /** {key, scores: Map<id, {itm, itc}>, pending} for the current query, model and top images */
  rerank: null,
  rerankAbort: null,
  /** {labels, template, itm, model} of the last Classify */
  classify: null,
  /** waiting for an API key */
  blocked: false,
  embedWorkers: 0,
  embedDone: 0,
  classifyWorkers: 0,
  classifyDone: 0,
};

const currentModel = () => state.models.find((m) => m.name === state.model);
const can = (capability) => currentModel()?.capabilities.includes(capability) ?? false;
const mode = () => {
  const m = document.querySelector('input[name=mode]:checked')?.value;
  return m === 'classify' || m === 'collection' ? m : 'search';
};

// ---- model and API key ----

async function loadModels() {
  try {
    const answer = await call('/models');
    const before = state.model;
    state.models = answer.models;
    if (!state.models.some((m) => m.name === state.model)) state.model = answer.default;
    const select = $('model');
    select.replaceChildren(...state.models.map((m) => new Option(m.name, m.name, false, m.name === state.model)));
    select.disabled = state.models.length < 2;
    notice('');
    collection.modelsChanged();
    if (state.model !== before) return modelChanged();
    // The same model again (after an API key was given): go on where the page stopped.
    showModel();
    if (mode() === 'collection') collection.shown();
    pump();
    pumpClassify();
    runQuery();
    scheduleRerank();
  } catch (e) {
    if (e.status === 401) return needKey(e);
    notice(e.status === 503 || e.status === 0 ? `${e.text} (trying again)` : e.text);
    if (e.status === 503 || e.status === 0) setTimeout(loadModels, 2000);
  }
}

/** What the chosen model can do, and the controls that need it. */
function showModel() {
  const m = currentModel();
  $('model-info').textContent = m
    ? `${m.capabilities.join(' · ')} — ${m.dim}-d, ${m.image_res} px, ${m.precision}, ${m.provider.image}`
    : '';
  const rerank = can('rerank');
  $('rerank').disabled = !rerank;
  $('rerank-n').disabled = !rerank;
  $('itm').disabled = !rerank;
  $('rerank-note').textContent = rerank ? '' : '(not for this model: it has no image–text matching part)';
  $('mode-classify').disabled = !can('classify');
}

/** Vectors and scores belong to a model: a new one starts them again. */
function modelChanged() {
  showModel();
  for (const img of state.images) {
    img.m = {};
    img.c = {};
  }
  state.queryVec = null;
  state.queryModel = '';
  state.rerank = null;
  render();
  pump();
  runQuery();
}

function needKey(err) {
  state.blocked = true;
  $('key-reason').textContent = apiKey.get()
    ? `${err.text}. Give another key.`
    : `${err.text}. This service needs an API key.`;
  $('key-form').hidden = false;
  $('key').focus();
  render();
}

$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  apiKey.set($('key').value.trim());
  $('key').value = '';
  $('key-form').hidden = true;
  state.blocked = false;
  loadModels();
});

$('model').addEventListener('change', () => {
  state.model = $('model').value;
  modelChanged();
});

// ---- adding images ----

function addFiles(files) {
  for (const file of files) addImage({ name: file.name || 'pasted image', file, thumb: URL.createObjectURL(file) });
}

function addUrls(text) {
  const urls = text.split(/\s+/).filter(Boolean);
  const bad = urls.filter((u) => !/^https?:\/\/\S+$/i.test(u));
  notice(bad.length ? `not an http(s) URL: ${bad.join(' ')}` : '');
  for (const url of urls.filter((u) => !bad.includes(u))) addImage({ name: urlName(url), url, thumb: url });
  return bad.length === 0;
}

function urlName(url) {
  const last = url.split(/[?#]/)[0].split('/').filter(Boolean).pop() ?? url;
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

function addImage(img) {
  const li = document.createElement('li');
  li.className = 'card';
  state.images.push({ ...img, id: state.nextId++, li, m: {}, c: {} });
  render();
  pump();
}

function removeImage(img) {
  const at = state.images.indexOf(img);
  state.images.splice(at, 1);
  if (img.file) URL.revokeObjectURL(img.thumb);
  img.li.remove();
  render();
  const next = state.images[Math.min(at, state.images.length - 1)];
  (next ? next.li.querySelector('button.remove') : $('files')).focus();
}

$('files').addEventListener('change', () => {
  addFiles($('files').files);
  $('files').value = '';
});

$('url-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (addUrls($('url').value)) $('url').value = '';
});

$('clear').addEventListener('click', () => {
  for (const img of [...state.images]) removeImage(img);
});

document.addEventListener('paste', (ev) => {
  if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement) return;
  const files = [...ev.clipboardData.files];
  ev.preventDefault();
  // In the Collection view a pasted image (or image URL, or text) is the query.
  if (mode() === 'collection')
    return files.length ? collection.files(files) : collection.pastedText(ev.clipboardData.getData('text'));
  if (files.length) addFiles(files);
  else addUrls(ev.clipboardData.getData('text'));
});

const dropZone = () => $(mode() === 'collection' ? 'collection' : 'drop');
document.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  dropZone().classList.add('over');
});
document.addEventListener('dragleave', (ev) => {
  if (ev.relatedTarget === null) dropZone().classList.remove('over');
});
document.addEventListener('drop', (ev) => {
  ev.preventDefault();
  dropZone().classList.remove('over');
  const files = [...ev.dataTransfer.files];
  if (mode() === 'collection') {
    const urls = ev.dataTransfer
      .getData('text/uri-list')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    return files.length ? collection.files(files) : urls.length && collection.pastedText(urls[0]);
  }
  if (files.length) addFiles(files);
  else
    addUrls(
      ev.dataTransfer
        .getData('text/uri-list')
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join(' '),
    );
});

// ---- embedding: once per image and model ----

/** Starts embedding the images that need it, CONCURRENCY at a time. */
function pump() {
  while (state.model && !state.blocked && state.embedWorkers < CONCURRENCY) {
    const img = state.images.find((i) => !i.m.vec && !i.m.err && !i.m.busy);
    if (!img) break;
    state.embedWorkers++;
    embed(img).finally(() => {
      state.embedWorkers--;
      state.embedDone++;
      pump();
      pumpClassify();
      render();
      scheduleRerank();
    });
  }
  render();
}

async function embed(img) {
  const m = img.m;
  const model = state.model;
  m.busy = true;
  try {
    let answer;
    if (img.file) {
      const form = new FormData();
      form.append('model', model);
      form.append('encoding_format', 'base64');
      form.append('file', img.file, img.name);
      answer = await call('/embed/image', { form });
    } else answer = await call('/embed/image', { json: { urls: [img.url], model, encoding_format: 'base64' } });
    m.vec = decodeVector(answer.embeddings[0]);
  } catch (e) {
    if (e.status === 401) needKey(e);
    else m.err = e;
  } finally {
    m.busy = false;
  }
}

// ---- search ----

let queryTimer;
$('query').addEventListener('input', () => {
  clearTimeout(queryTimer);
  queryTimer = setTimeout(runQuery, 250);
});
$('query').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') {
    clearTimeout(queryTimer);
    runQuery();
  }
});

async function runQuery() {
  const q = $('query').value.trim();
  if (!state.model || state.blocked || (q === state.query && state.queryModel === state.model)) return;
  state.queryAbort?.abort();
  state.query = q;
  state.queryModel = state.model;
  state.queryVec = null;
  state.rerank = null;
  $('search-error').textContent = '';
  if (!q) return render();
  const abort = (state.queryAbort = new AbortController());
  render();
  try {
    const answer = await call('/embed/text', {
      json: { text: q, model: state.model, encoding_format: 'base64' },
      signal: abort.signal,
    });
    state.queryVec = decodeVector(answer.embeddings[0]);
  } catch (e) {
    if (e.name === 'AbortError') return;
    state.queryModel = '';
    if (e.status === 401) return needKey(e);
    $('search-error').textContent = e.text;
  } finally {
    if (state.queryAbort === abort) state.queryAbort = null;
  }
  render();
  scheduleRerank();
}

/** The embedded images by cosine to the query, best first (ties in the order added). */
function byCosine() {
  const scored = state.images.filter((i) => i.m.vec).map((img) => ({ img, score: cosine(state.queryVec, img.m.vec) }));
  return scored.sort((a, b) => b.score - a.score || a.img.id - b.img.id);
}

let rerankTimer;
function scheduleRerank() {
  clearTimeout(rerankTimer);
  rerankTimer = setTimeout(runRerank, 150);
}
$('rerank').addEventListener('change', scheduleRerank);
$('rerank-n').addEventListener('change', scheduleRerank);

async function runRerank() {
  const on = $('rerank').checked && can('rerank') && state.queryVec && mode() === 'search';
  // Wait for the images still being embedded, so the top ones are known.
  if (!on || state.embedWorkers > 0) {
    if (!on && state.rerank) {
      state.rerankAbort?.abort();
      state.rerank = null;
      render();
    }
    return;
  }
  const n = Math.max(1, Number($('rerank-n').value) || 10);
  const top = byCosine()
    .slice(0, n)
    .map((s) => s.img);
  if (!top.length) return;
  const key = `${state.model}\n${state.query}\n${top.map((i) => i.id).join(',')}`;
  if (state.rerank?.key === key) return;
  state.rerankAbort?.abort();
  const abort = (state.rerankAbort = new AbortController());
  const rerank = (state.rerank = { key, scores: new Map(), pending: true });
  $('search-error').textContent = '';
  render();
  try {
    const documents = await Promise.all(top.map(async (img) => ({ image: img.url ?? (await dataUri(img)) })));
    const answer = await call('/v1/rerank', {
      json: { model: state.model, query: state.query, documents },
      signal: abort.signal,
    });
    for (const r of answer.results) rerank.scores.set(top[r.index].id, { itm: r.relevance_score, itc: r.itc });
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e.status === 401) {
      state.rerank = null;
      return needKey(e);
    }
    const which = e.index !== undefined && top[e.index] ? ` (${top[e.index].name})` : '';
    $('search-error').textContent = `re-rank: ${e.text}${which}`;
  }
  rerank.pending = false;
  render();
}

function dataUri(img) {
  img.dataUri ??= new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new ApiError(0, 'read_error', `cannot read ${img.name}`));
    reader.readAsDataURL(img.file);
  });
  return img.dataUri;
}

// ---- classify ----

$('classify-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const labels = $('labels')
    .value.split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const template = $('template').value.trim();
  state.classify = { labels, template, itm: $('itm').checked && can('rerank'), model: state.model };
  $('classify-error').textContent = state.images.length ? '' : 'Add images first.';
  for (const img of state.images) img.c = {};
  state.classifyDone = 0;
  pumpClassify();
});

$('labels').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('classify-form').requestSubmit();
});

function pumpClassify() {
  const params = state.classify;
  while (params && params.model === state.model && !state.blocked && state.classifyWorkers < CONCURRENCY) {
    const img = state.images.find((i) => i.m.vec && !i.c.result && !i.c.err && !i.c.busy);
    if (!img) break;
    state.classifyWorkers++;
    classify(img, params).finally(() => {
      state.classifyWorkers--;
      state.classifyDone++;
      pumpClassify();
      render();
    });
  }
  render();
}

/** Errors about the request, not the image: shown once, above the images. */
const requestLevel = (e) => e.status === 400 || e.status === 404 || (e.status === 413 && e.code === 'body_too_large');

async function classify(img, params) {
  const c = img.c;
  c.busy = true;
  try {
    let answer;
    if (img.file) {
      const form = new FormData();
      form.append('model', params.model);
      for (const l of params.labels) form.append('labels', l);
      if (params.template) form.append('template', params.template);
      if (params.itm) form.append('itm', 'true');
      form.append('file', img.file, img.name);
      answer = await call('/classify', { form });
    } else {
      const json = { urls: [img.url], labels: params.labels, model: params.model, itm: params.itm };
      if (params.template) json.template = params.template;
      answer = await call('/classify', { json });
    }
    c.result = answer.results[0];
  } catch (e) {
    if (e.status === 401) return needKey(e);
    c.err = e;
    if (requestLevel(e) && !$('classify-error').textContent) $('classify-error').textContent = e.text;
  } finally {
    c.busy = false;
  }
}

// ---- showing it ----

for (const r of document.querySelectorAll('input[name=mode]')) {
  r.addEventListener('change', () => {
    render();
    scheduleRerank();
    if (mode() === 'collection') collection.shown();
  });
}

/** A message about the page as a whole (loading the models, a bad URL). */
function notice(text) {
  $('notice').textContent = text;
}

/** A score row: its name, a bar `width` (0..1) long, and the value. */
function bar(name, value, width, attrs = {}, kind = '') {
  const row = document.createElement('div');
  row.className = `score ${kind}`.trim();
  Object.assign(row.dataset, attrs);
  const label = document.createElement('span');
  label.className = 'label';
  label.textContent = name;
  const track = document.createElement('span');
  track.className = 'bar';
  track.setAttribute('aria-hidden', 'true');
  const fill = document.createElement('span');
  fill.className = 'fill';
  fill.style.width = `${Math.max(0, Math.min(1, width)) * 100}%`;
  track.append(fill);
  const num = document.createElement('span');
  num.className = 'value';
  num.textContent = value.toFixed(4);
  row.append(label, track, num);
  return row;
}

function text(tag, className, content) {
  const el = document.createElement(tag);
  el.className = className;
  el.textContent = content;
  return el;
}

function renderCard(img, body, rank) {
  const li = img.li;
  if (!li.firstChild) {
    const thumb = document.createElement('img');
    thumb.src = img.thumb;
    thumb.alt = '';
    thumb.referrerPolicy = 'no-referrer';
    thumb.addEventListener('error', () => thumb.classList.add('broken'));
    const head = document.createElement('div');
    head.className = 'head';
    const remove = text('button', 'remove', '×');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove ${img.name}`);
    remove.addEventListener('click', () => removeImage(img));
    head.append(text('span', 'rank', ''), text('span', 'name', img.name), remove);
    head.querySelector('.name').title = img.name;
    li.append(thumb, head, document.createElement('div'));
  }
  li.dataset.name = img.name;
  li.querySelector('.rank').textContent = rank ? `#${rank}` : '';
  li.lastChild.replaceChildren(...body);
}

function render() {
  const m = mode();
  $('search').hidden = m !== 'search';
  $('classify').hidden = m !== 'classify';
  // The Collection view has its own query and results; the images added here wait beside it.
  const own = m !== 'collection';
  $('collection').hidden = own;
  $('c-results').hidden = own;
  $('add').hidden = !own;
  $('results').hidden = !own;
  if (!own) {
    $('empty').hidden = true;
    return;
  }
  const embedBusy = state.images.filter((i) => i.m.busy || (!i.m.vec && !i.m.err)).length;
  const classifyBusy = state.classify
    ? state.images.filter((i) => i.m.vec && (i.c.busy || (!i.c.result && !i.c.err))).length
    : 0;

  // Progress: this wave of embeddings, then of classifications.
  if (!embedBusy) state.embedDone = 0;
  if (!classifyBusy) state.classifyDone = 0;
  const progress = $('progress');
  const show = (done, left, what) => {
    progress.hidden = false;
    progress.max = done + left;
    progress.value = done;
    $('status').textContent = `${what}: ${done} of ${done + left} done`;
  };
  if (state.model && !state.blocked && embedBusy) show(state.embedDone, embedBusy, 'Embedding images');
  else if (state.model && !state.blocked && m === 'classify' && classifyBusy)
    show(state.classifyDone, classifyBusy, 'Classifying');
  else {
    progress.hidden = true;
    const n = state.images.length;
    $('status').textContent = n ? `${n} image${n > 1 ? 's' : ''}` : '';
  }
  const busy =
    embedBusy > 0 ||
    (m === 'classify' && classifyBusy > 0) ||
    (m === 'search' && (state.queryAbort !== null || (state.rerank?.pending ?? false)));
  $('results').setAttribute('aria-busy', String(busy && !state.blocked));
  $('results').dataset.query = m === 'search' && state.queryVec ? state.query : '';
  $('empty').hidden = state.images.length > 0;

  const order = m === 'search' ? renderSearch() : renderClassify();
  const list = $('results');
  const current = [...list.children];
  if (order.length !== current.length || order.some((img, i) => img.li !== current[i]))
    list.replaceChildren(...order.map((i) => i.li));
}

/** Cards in search order: re-ranked ones by ITM, then the others by cosine, then pending, then errors. */
function renderSearch() {
  const pending = state.images.filter((i) => !i.m.vec && !i.m.err);
  const failed = state.images.filter((i) => i.m.err);
  let scored = state.queryVec
    ? byCosine()
    : state.images.filter((i) => i.m.vec).map((img) => ({ img, score: undefined }));
  const rr = state.rerank && !state.rerank.pending ? state.rerank.scores : null;
  if (rr) {
    const top = scored
      .filter((s) => rr.has(s.img.id))
      .sort((a, b) => rr.get(b.img.id).itm - rr.get(a.img.id).itm || a.img.id - b.img.id);
    scored = [...top, ...scored.filter((s) => !rr.has(s.img.id))];
  }
  // Cosine bars span the scores shown, worst to best: they show the ranking; the numbers are exact.
  const cos = scored.flatMap((s) => (s.score === undefined ? [] : [s.score, rr?.get(s.img.id)?.itc ?? s.score]));
  const lo = Math.min(...cos);
  const hi = Math.max(...cos);
  const span = (v) => (hi > lo ? 0.08 + (0.92 * (v - lo)) / (hi - lo) : 1);
  scored.forEach(({ img, score }, i) => {
    img.li.dataset.state = 'ready';
    const rs = rr?.get(img.id);
    delete img.li.dataset.itm;
    delete img.li.dataset.itc;
    if (score === undefined) {
      delete img.li.dataset.score;
      return renderCard(img, [text('p', 'muted', 'embedded')]);
    }
    img.li.dataset.score = String(score);
    if (!rs) return renderCard(img, [bar('cosine', score, span(score))], i + 1);
    img.li.dataset.itm = String(rs.itm);
    img.li.dataset.itc = String(rs.itc);
    renderCard(img, [bar('ITM', rs.itm, rs.itm, {}, 'prob'), bar('itc', rs.itc, span(rs.itc))], i + 1);
  });
  for (const img of pending) {
    img.li.dataset.state = 'pending';
    renderCard(img, [text('p', 'muted', state.blocked ? 'waiting for an API key' : 'embedding…')]);
  }
  for (const img of failed) {
    img.li.dataset.state = 'error';
    renderCard(img, [text('p', 'error', img.m.err.text)]);
  }
  return [...scored.map((s) => s.img), ...pending, ...failed];
}

/** Cards in the order added, each with its labels by score. */
function renderClassify() {
  for (const img of state.images) {
    const err = img.m.err ?? img.c.err;
    if (err) {
      img.li.dataset.state = 'error';
      renderCard(img, [text('p', 'error', err.text)]);
    } else if (img.c.result) {
      img.li.dataset.state = 'ready';
      const rows = img.c.result.map((r) => {
        const attrs = { label: r.label, score: String(r.score) };
        if (r.itm_prob !== undefined) attrs.itm = String(r.itm_prob);
        const row = bar(r.label, r.score, r.score, attrs, 'prob');
        if (r.itm_prob !== undefined) row.append(text('span', 'itm', `ITM ${r.itm_prob.toFixed(4)}`));
        return row;
      });
      const labels = document.createElement('div');
      labels.className = 'labels';
      labels.append(...rows);
      renderCard(img, [labels]);
    } else {
      img.li.dataset.state = 'pending';
      const what = !img.m.vec ? 'embedding…' : state.classify ? 'classifying…' : 'give labels and press Classify';
      renderCard(img, [text('p', 'muted', what)]);
    }
  }
  return state.images;
}

const collection = collectionView({
  active: () => mode() === 'collection' && !state.blocked,
  models: () => state.models,
  needKey,
  bar,
  text,
});

loadModels();
