// minichain explorer: a small single-page app over the node's JSON API.
// No framework and no build step: hash routing, fetch, and DOM building with
// textContent only, so nothing the API returns is ever parsed as HTML.
'use strict';

(function () {
  const COIN = 100000000;             // base units per coin
  const HISTORY_ROWS = 200;           // rows of an address's history shown
  const ZERO_HASH = '0'.repeat(64);   // a coinbase input "spends" this txid
  const view = document.getElementById('view');

  // ---------- Helpers ----------

  // GET a JSON path; a non-2xx answer becomes an Error carrying the API's own message.
  async function api(path) {
    const res = await fetch(path, { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON: keep null */ }
    if (!res.ok) {
      const err = new Error((body && body.error) || `HTTP ${res.status} for ${path}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  // el('a', {href, class, data: {txid}}, 'text', childNode, [more]) builds a DOM node.
  // Strings become text nodes, which is what keeps API data from being run as markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  const td = (content, cls) => el('td', { class: cls }, content);
  const yesNo = b => (b ? 'yes' : 'no');
  const sum = xs => xs.reduce((a, b) => a + b, 0);
  const bytes = n => `${Number(n).toLocaleString()} B`;

  // Base units → coins with 8 decimals using integer maths (no float rounding);
  // amounts stay far below 2^53, so Number is exact here.
  function coins(units) {
    if (typeof units !== 'number') return '—';
    const a = Math.abs(units);
    return (units < 0 ? '-' : '') + Math.floor(a / COIN) + '.' + String(a % COIN).padStart(8, '0');
  }

  // An amount: the number in its own span (tests read it with an id), the unit beside it.
  const amount = (units, id) => el('span', { class: 'amount' }, el('span', { id }, coins(units)), ' coins');

  // Long hashes are shortened in lists; the full value stays in the tooltip.
  const shortHash = h => (h && h.length > 20 ? `${h.slice(0, 8)}…${h.slice(-8)}` : h);
  const hash = (h, short) => el('span', { class: 'hash', title: h }, short ? shortHash(h) : h);

  const blockLink = (hash, text) =>
    el('a', { class: 'block-link', href: `#/block/${hash}`, title: hash }, text);
  const txLink = (txid, short) =>
    el('a', { class: 'tx-link hash', href: `#/tx/${txid}`, title: txid, data: { txid } }, short ? shortHash(txid) : txid);
  const addressLink = (addr, extra) =>
    el('a', { class: 'address-link hash' + (extra ? ' ' + extra : ''),
      href: `#/address/${encodeURIComponent(addr)}`, data: { address: addr } }, addr);

  // "3 min ago" (or "in 2 s" for a clock slightly ahead, which regtest does).
  function ago(t) {
    const s = Math.round(Date.now() / 1000 - t), a = Math.abs(s);
    if (a < 5) return 'just now';
    const [n, u] = a < 60 ? [a, 's'] : a < 3600 ? [Math.floor(a / 60), 'min']
      : a < 86400 ? [Math.floor(a / 3600), 'h'] : [Math.floor(a / 86400), 'd'];
    return s > 0 ? `${n} ${u} ago` : `in ${n} ${u}`;
  }
  const localTime = t => new Date(t * 1000).toLocaleString();

  // Difficulty spans many orders of magnitude (regtest is tiny), so format by size.
  function fmtDifficulty(d) {
    if (typeof d !== 'number') return null;
    if (d >= 1e9) return d.toExponential(3);
    if (d >= 1) return d.toLocaleString(undefined, { maximumFractionDigits: 3 });
    return d === 0 ? '0' : d.toPrecision(4);
  }

  function duration(secs) {
    const m = Math.floor(secs / 60), s = secs % 60;
    return m ? `${m} min ${s} s` : `${s} s`;
  }

  // A table wrapped in div.scroll so wide rows scroll sideways on a phone.
  function table(id, headers, rows, empty) {
    const body = rows.length ? rows
      : el('tr', null, el('td', { colspan: headers.length, class: 'empty' }, empty || 'none'));
    return el('div', { class: 'scroll' },
      el('table', { id },
        el('thead', null, el('tr', null, headers.map(h => el('th', null, h)))),
        el('tbody', null, body)));
  }

  // A label/value list; null entries are skipped so optional fields stay out.
  const fields = pairs =>
    el('dl', { class: 'fields' }, pairs.filter(Boolean).map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));

  // ---------- Pages: each loads its data, then returns {title, node} ----------

  const pages = {
    async home() {
      const [tip, mempool] = await Promise.all([api('/blocks/tip'), api('/mempool')]);
      // The nine blocks below the tip, fetched in parallel; one lost to a reorg is skipped.
      const heights = [];
      for (let h = tip.height - 1; h >= 0 && h > tip.height - 10; h--) heights.push(h);
      const older = await Promise.allSettled(heights.map(h => api(`/blocks/${h}`)));
      const blocks = [tip, ...older.filter(r => r.status === 'fulfilled').map(r => r.value)];

      const rows = blocks.map(b => el('tr', { data: { height: b.height } },
        td(blockLink(b.hash, b.height)),
        td(hash(b.hash, true)),
        td(el('span', { title: localTime(b.time) }, ago(b.time))),
        td(b.tx_count, 'num'),
        td(bytes(b.size), 'num')));

      return {
        title: 'Recent blocks',
        node: el('section', { id: 'home-view' },
          el('h1', null, 'Recent blocks'),
          table('recent-blocks', ['Height', 'Hash', 'Time', 'Txs', 'Size'], rows),
          el('h2', null, 'Mempool'),
          el('p', null, `${mempool.size} transaction${mempool.size === 1 ? '' : 's'} waiting, ${bytes(mempool.bytes)} · `,
            el('a', { href: '#/mempool' }, 'view mempool'))),
      };
    },

    async block(id) {
      const b = await api(`/blocks/${encodeURIComponent(id)}`);
      const genesis = b.height === 0 || b.prev_hash === ZERO_HASH;
      const diff = fmtDifficulty(b.difficulty);
      // Previous by height on the active chain; a side-branch block links its parent by hash.
      const prevHref = genesis ? null : b.in_active_chain ? `#/block/${b.height - 1}` : `#/block/${b.prev_hash}`;
      // A next block exists only below the active tip (the tip has 1 confirmation).
      const nextHref = b.in_active_chain && b.confirmations > 1 ? `#/block/${b.height + 1}` : null;

      const txRows = b.txids.map((txid, i) => el('tr', null,
        td(i, 'num'), td(txLink(txid)), td(i === 0 ? 'coinbase' : '')));

      return {
        title: `Block ${b.height}`,
        node: el('section', { id: 'block-view' },
          el('h1', null, 'Block ', el('span', { id: 'block-height' }, b.height)),
          el('p', { class: 'pager' },
            prevHref ? el('a', { id: 'prev-block', href: prevHref, rel: 'prev' }, `← ${b.height - 1}`) : null,
            nextHref ? el('a', { id: 'next-block', href: nextHref, rel: 'next' }, `${b.height + 1} →`) : null),
          fields([
            ['Hash', el('span', { id: 'block-hash', class: 'hash' }, b.hash)],
            ['Confirmations', String(b.confirmations)],
            ['In active chain', b.in_active_chain ? 'yes' : 'no (side branch)'],
            ['Version', String(b.version)],
            ['Previous block', genesis ? 'none (genesis)' : el('a', { class: 'hash', href: `#/block/${b.prev_hash}` }, b.prev_hash)],
            ['Merkle root', hash(b.merkle_root)],
            ['Time', `${localTime(b.time)} (${ago(b.time)})`],
            ['Bits', b.bits],
            diff && ['Difficulty', diff],
            ['Nonce', String(b.nonce)],
            ['Size', bytes(b.size)],
            ['Transactions', String(b.tx_count)],
          ]),
          el('h2', null, 'Transactions'),
          table('block-txs', ['#', 'Txid', ''], txRows)),
      };
    },

    async tx(id) {
      const d = await api(`/tx/${encodeURIComponent(id)}`);
      const t = d.tx;
      const isCoinbaseInput = inp => inp.txid === ZERO_HASH;
      // Prefer the node's flag; older nodes without it: infer from the single null input.
      const coinbase = typeof d.coinbase === 'boolean' ? d.coinbase
        : t.inputs.length === 1 && isCoinbaseInput(t.inputs[0]);
      const prevouts = Array.isArray(d.prevouts) ? d.prevouts : [];
      const totalOut = sum(t.outputs.map(o => o.value));
      const allKnown = !coinbase && prevouts.length === t.inputs.length && prevouts.every(Boolean);
      const totalIn = allKnown ? sum(prevouts.map(p => p.value)) : null;
      // The API gives the fee only for mempool txs; for mined ones it follows from the prevouts.
      const fee = typeof d.fee === 'number' ? d.fee : totalIn != null ? totalIn - totalOut : null;

      const conf = [el('span', { id: 'tx-confirmations' }, d.confirmations),
        d.confirmations === 1 ? ' confirmation' : ' confirmations'];
      const status = d.in_mempool || !d.block
        ? [conf, ' · in mempool']
        : [conf, ' · block ',
          blockLink(d.block, d.height != null ? String(d.height) : shortHash(d.block))];

      const inRows = t.inputs.map((inp, i) => {
        if (isCoinbaseInput(inp)) return el('tr', null, td(i, 'num'), td('coinbase (new coins)'), td('—'), td('—', 'num'));
        const p = prevouts[i];
        return el('tr', null, td(i, 'num'),
          td([txLink(inp.txid, true), `:${inp.vout}`]),
          td(p ? addressLink(p.address) : 'unknown'),
          td(p ? coins(p.value) : '—', 'num'));
      });
      const outRows = t.outputs.map((o, i) => el('tr', null,
        td(i, 'num'), td(addressLink(o.address, 'output-address')), td(coins(o.value), 'num')));

      return {
        title: `Transaction ${shortHash(t.txid)}`,
        node: el('section', { id: 'tx-view' },
          el('h1', null, coinbase ? 'Coinbase transaction' : 'Transaction'),
          fields([
            ['Txid', el('span', { id: 'tx-id', class: 'hash' }, t.txid)],
            ['Status', status],
            ['Fee', fee != null ? amount(fee, 'tx-fee')
              : el('span', { id: 'tx-fee' }, coinbase ? 'none (coinbase)' : 'unknown')],
            ['Size', bytes(t.size)],
            ['Total in', coinbase ? 'new coins' : totalIn != null ? amount(totalIn) : 'unknown'],
            ['Total out', amount(totalOut)],
            ['Version', String(t.version)],
            ['Lock time', String(t.lock_time)],
          ]),
          el('h2', null, 'Inputs'),
          table('tx-inputs', ['#', 'Spends', 'Address', 'Value (coins)'], inRows),
          el('h2', null, 'Outputs'),
          table('tx-outputs', ['#', 'Address', 'Value (coins)'], outRows),
          el('details', null, el('summary', null, 'Raw hex'), el('pre', { class: 'hash' }, t.hex))),
      };
    },

    async address(addr) {
      const a = encodeURIComponent(addr);
      const [bal, u, h] = await Promise.all(
        [api(`/address/${a}/balance`), api(`/address/${a}/utxos`), api(`/address/${a}/history`)]);
      const rows = u.utxos.map(o => el('tr', null,
        td([txLink(o.txid, true), `:${o.vout}`]),
        td(coins(o.value), 'num'),
        td(o.height != null ? el('a', { href: `#/block/${o.height}` }, o.height) : 'mempool'),
        td(o.confirmations, 'num'),
        td(yesNo(o.coinbase)),
        td(yesNo(o.spendable))));

      // The history, newest first (the mempool's on top): what each transaction did to
      // this address. A long one shows its newest HISTORY_ROWS.
      const shown = h.txs.slice(0, HISTORY_ROWS);
      const historyRows = shown.map(t => el('tr', { data: { txid: t.txid } },
        td(txLink(t.txid, true)),
        td(t.height != null ? el('a', { href: `#/block/${t.height}` }, t.height) : 'mempool'),
        td(t.confirmations, 'num'),
        td(coins(t.received), 'num received'),
        td(coins(t.sent), 'num sent'),
        td(coins(t.received - t.sent), 'num net'),
        td(t.coinbase ? 'coinbase' : coins(t.fee), 'num')));
      const historyTitle = h.txs.length > shown.length
        ? `History (newest ${shown.length} of ${h.txs.length})` : `History (${h.txs.length})`;

      return {
        title: `Address ${shortHash(bal.address)}`,
        node: el('section', { id: 'address-view' },
          el('h1', null, 'Address'),
          el('p', { id: 'address', class: 'hash big' }, bal.address),
          fields([
            ['Confirmed balance', amount(bal.confirmed, 'address-balance')],
            ['of which immature', amount(bal.immature, 'address-immature')],
            ['Unconfirmed change', amount(bal.unconfirmed, 'address-unconfirmed')],
          ]),
          el('h2', null, `Unspent outputs (${u.utxos.length})`),
          table('address-utxos', ['Output', 'Value (coins)', 'Height', 'Confirmations', 'Coinbase', 'Spendable'],
            rows, 'no unspent outputs'),
          el('h2', null, historyTitle),
          table('address-history',
            ['Transaction', 'Height', 'Confirmations', 'Received', 'Sent', 'Net', 'Fee (of the tx)'],
            historyRows, 'no transactions')),
      };
    },

    async mempool() {
      const m = await api('/mempool');
      const rows = m.txs.map(t => el('tr', null,
        td(txLink(t.txid, true)), td(coins(t.fee), 'num'), td(bytes(t.size), 'num'), td(t.fee_rate, 'num')));
      return {
        title: 'Mempool',
        node: el('section', { id: 'mempool-view' },
          el('h1', null, 'Mempool'),
          fields([['Transactions', String(m.size)], ['Size', bytes(m.bytes)]]),
          table('mempool-txs', ['Txid', 'Fee (coins)', 'Size', 'Fee rate (units/kB)'], rows, 'the mempool is empty')),
      };
    },

    async peers() {
      const [peers, bans] = await Promise.all([api('/peers'), api('/bans')]);
      const peerRows = peers.map(p => el('tr', null,
        td(hash(p.peer_id, true)), td(hash(p.addr)),
        td(p.direction + (p.relayed ? ' (relayed)' : '')), td(p.source), td(p.agent),
        td(p.height != null ? p.height : '—', 'num')));
      const banRows = bans.map(b => el('tr', null,
        td(hash(b.peer_id, true)), td(b.reason), td(duration(b.expires_in_secs), 'num')));
      return {
        title: 'Peers',
        node: el('section', { id: 'peers-view' },
          el('h1', null, `Peers (${peers.length})`),
          table('peers', ['Peer', 'Address', 'Direction', 'Source', 'Agent', 'Height'], peerRows, 'no peers connected'),
          el('h2', null, `Bans (${bans.length})`),
          table('bans', ['Peer', 'Reason', 'Expires in'], banRows, 'no bans')),
      };
    },

    // Reached only from a search that matched nothing.
    async search(q) {
      throw new Error(`not a height, block hash, txid or address: "${q}"`);
    },
  };

  function errorPage(err) {
    const title = err.status === 404 ? 'Not found' : 'Error';
    return {
      title,
      node: el('section', { id: 'error-view', class: 'error', role: 'alert' },
        el('h1', null, title),
        el('p', { class: 'error-message' }, err.message),
        el('p', null, el('a', { href: '#/' }, 'Back to recent blocks'))),
    };
  }

  // ---------- Router ----------

  // "#/block/12" → {name: 'block', arg: '12'}; an empty hash is the home page.
  function parseRoute() {
    const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
    let arg = rest.join('/');
    try { arg = decodeURIComponent(arg); } catch (_) { /* malformed %: use as is */ }
    return { name: name || 'home', arg };
  }

  // Every render takes a ticket; a result whose ticket is no longer the latest is
  // stale (the user moved on, or a newer refresh started) and is dropped.
  let ticket = 0;

  async function render(background) {
    const mine = ++ticket;
    const { name, arg } = parseRoute();
    for (const a of document.querySelectorAll('nav a[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === name);
    }
    // Clear the old page at once so nothing waits on an element from the previous page.
    if (!background) view.replaceChildren(el('p', { class: 'loading' }, 'Loading…'));

    const page = Object.prototype.hasOwnProperty.call(pages, name) ? pages[name] : null;
    let result;
    try {
      if (!page || (page.length > 0 && !arg)) {
        throw Object.assign(new Error(`no such page: ${location.hash}`), { status: 404 });
      }
      result = await page(arg);
    } catch (err) {
      if (background) return; // a failed live refresh keeps what is on screen
      result = errorPage(err);
    }
    if (mine !== ticket) return;
    document.title = `${result.title} · minichain`;
    view.replaceChildren(result.node);
  }

  // Setting the same hash fires no hashchange, so render directly in that case.
  function go(hash) {
    if (location.hash === hash) render(false);
    else location.hash = hash;
  }

  // ---------- Search ----------

  document.getElementById('search-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const q = document.getElementById('search').value.trim();
    if (!q) return;
    if (/^\d+$/.test(q)) return go(`#/block/${q}`);
    if (/^[0-9a-fA-F]{64}$/.test(q)) {
      // A 64-hex string is a block hash or a txid; ask the block endpoint which.
      const hex = q.toLowerCase();
      let isBlock = false;
      try { isBlock = (await fetch(`/blocks/${hex}`)).ok; } catch (_) { /* offline: try tx */ }
      return go(isBlock ? `#/block/${hex}` : `#/tx/${hex}`);
    }
    // bech32 may be written all upper case; the node expects lower case.
    if (/^mc/i.test(q)) return go(`#/address/${encodeURIComponent(q.toLowerCase())}`);
    go(`#/search/${encodeURIComponent(q)}`);
  });

  // ---------- Header status ----------

  const setText = (id, text) => { document.getElementById(id).textContent = text; };
  let statusTicket = 0;

  async function refreshStatus() {
    const mine = ++statusTicket;
    const bar = document.getElementById('status');
    try {
      const s = await api('/status');
      if (mine !== statusTicket) return; // an older answer arriving late
      setText('network', s.network);
      setText('tip-height', String(s.height));
      setText('sync-state', s.syncing ? `syncing ${s.height}/${s.headers}` : 'synced');
      document.getElementById('sync-state').className = s.syncing ? 'syncing' : 'synced';
      setText('peer-count', String(s.peer_count));
      const diff = fmtDifficulty(s.difficulty);
      document.getElementById('difficulty-wrap').hidden = diff == null;
      if (diff != null) setText('difficulty', diff);
      bar.classList.remove('stale');
    } catch (_) {
      if (mine === statusTicket) bar.classList.add('stale'); // keep the last values, dimmed
    }
  }

  // ---------- Live updates ----------

  // Mining 100 blocks sends 100 events; collect them and refresh once shortly after.
  const pending = { status: false, views: new Set() };
  let timer = null;

  function schedule(views) {
    pending.status = true;
    views.forEach(v => pending.views.add(v));
    if (!timer) timer = setTimeout(flush, 250);
  }

  function flush() {
    timer = null;
    if (pending.status) refreshStatus();
    const name = parseRoute().name;
    if (pending.views.has('*') || pending.views.has(name)) render(true);
    pending.status = false;
    pending.views.clear();
  }

  function setLive(on) {
    const live = document.getElementById('live');
    live.textContent = on ? 'live' : 'disconnected';
    live.className = on ? 'live on' : 'live off';
  }

  function connectEvents() {
    if (!window.EventSource) { setText('live', 'no live updates'); return; }
    const es = new EventSource('/events');
    let lost = false;
    es.addEventListener('open', () => {
      setLive(true);
      // Events sent while we were away are gone; catch up on everything.
      if (lost) schedule(['*']);
      lost = false;
    });
    // EventSource reconnects by itself; we only show the state.
    es.addEventListener('error', () => { lost = true; setLive(false); });
    // A new block or a reorg changes confirmations, balances, the mempool: refresh any page.
    es.addEventListener('block', () => schedule(['*']));
    es.addEventListener('reorg', () => schedule(['*']));
    es.addEventListener('lagged', () => schedule(['*']));
    // A new mempool tx matters to the pages that show unconfirmed data.
    es.addEventListener('tx', () => schedule(['home', 'mempool', 'address']));
    es.addEventListener('peer', () => schedule(['peers']));
  }

  // ---------- Start ----------

  window.addEventListener('hashchange', () => render(false));
  render(false);
  refreshStatus();
  setInterval(refreshStatus, 10000); // fallback if events are missed or blocked
  connectEvents();
})();
