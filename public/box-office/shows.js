/*
 * The shows with their seats, kept live by GET /events (a snapshot, then `seats` changes), with
 * plain reads of GET / when the stream is refused; the per-order limit from /openapi.json.
 */
"use strict";

(() => {
	const { $, say, seats } = window.BoxOffice;

	/** After the event stream gave up (e.g. the node is full), how long before trying again. */
	const STREAM_RETRY_MS = 15000;

	const showList = $("show-list");
	const liveState = $("live-state");
	const countHint = $("count-hint");

	/** id → { show, row, input, seats } in the order the server lists them. */
	const rows = new Map();
	let maxPerOrder = null;
	let listShown = false;
	/** What the order form tells us: whether an order is in flight, and the seats asked for. */
	let form = { busy: () => false, count: () => 1 };
	let firstList;
	const listed = new Promise(resolve => (firstList = resolve));

	function seatsText(show) {
		return show.available > 0 ? `${show.available} of ${show.houseSize} left` : "Sold out";
	}

	function renderRow(entry) {
		const { show, row, input } = entry;
		const soldOut = show.available <= 0;
		row.classList.toggle("sold-out", soldOut);
		input.disabled = soldOut && !input.checked;
		entry.seats.textContent = seatsText(show);
	}

	function addRow(show) {
		const row = document.createElement("div");
		row.className = "show";
		row.dataset.showId = show._id;
		const input = document.createElement("input");
		input.type = "radio";
		input.name = "showID";
		input.value = show._id;
		input.id = `show-${show._id}`;
		const label = document.createElement("label");
		label.htmlFor = input.id;
		const name = document.createElement("span");
		name.className = "show-name";
		name.textContent = show.name;
		const left = document.createElement("span");
		left.className = "show-seats";
		label.append(name, left);
		row.append(input, label);
		showList.append(row);
		const entry = { show: { ...show }, row, input, seats: left };
		rows.set(show._id, entry);
		renderRow(entry);
	}

	/** The whole list anew (first load, or a snapshot after a gap), keeping the choice made. */
	function showAll(shows) {
		listShown = true;
		const chosen = selected();
		showList.textContent = "";
		rows.clear();
		for (const show of shows) addRow(show);
		const keep = chosen && rows.get(chosen);
		if (keep) keep.input.checked = true;
		if (rows.size === 0) showList.textContent = "No shows are on sale right now.";
		updateCountHint();
		firstList();
	}

	/** One show's seats changed somewhere: update its row, and tell the buyer if it matters. */
	function changeSeats(change) {
		const entry = rows.get(change._id);
		if (!entry) return addNewShow(change._id);
		const wasAvailable = entry.show.available;
		Object.assign(entry.show, change);
		renderRow(entry);
		if (entry.input.checked && change.available < wasAvailable && !form.busy()) {
			if (change.available === 0) say(`${entry.show.name} has just sold out.`);
			else if (change.available < form.count())
				say(`Only ${seats(change.available)} left for ${entry.show.name} now.`);
		}
		updateCountHint();
	}

	async function addNewShow(id) {
		const res = await fetch(`/shows/${encodeURIComponent(id)}`).catch(() => null);
		if (res?.ok && !rows.has(id)) addRow(await res.json());
	}

	function selected() {
		return showList.querySelector("input[name=showID]:checked")?.value;
	}

	function updateCountHint() {
		const limit = maxPerOrder ? `1 to ${maxPerOrder} seats in one order.` : "At least 1 seat.";
		const entry = rows.get(selected());
		const left =
			entry && entry.show.available > 0 ? ` ${entry.show.available} left for this show.` : "";
		countHint.textContent = limit + left;
	}

	function setLive(state, text) {
		liveState.dataset.state = state;
		liveState.textContent = text;
	}

	/** The list by plain GET, when the event stream is not available. */
	async function loadListOnce() {
		try {
			const res = await fetch("/?limit=1000");
			if (res.ok) showAll(await res.json());
		} catch {
			setLive("paused", "Cannot reach the box office. Retrying…");
		}
	}

	function connectEvents() {
		const source = new EventSource("/events");
		source.addEventListener("snapshot", e => showAll(JSON.parse(e.data).shows));
		source.addEventListener("seats", e => changeSeats(JSON.parse(e.data)));
		source.addEventListener("open", () =>
			setLive("live", "Live: seat counts update as others book.")
		);
		source.addEventListener("error", () => {
			// Until a snapshot arrives, the list comes from a plain read.
			if (!listShown) loadListOnce();
			if (source.readyState === EventSource.CONNECTING) {
				setLive("paused", "Reconnecting… seat counts may be out of date.");
				return;
			}
			// The server refused the stream (full, or down): plain reads until it lets us in.
			source.close();
			setLive("paused", "Live updates paused; seat counts may be out of date.");
			loadListOnce();
			setTimeout(connectEvents, STREAM_RETRY_MS + Math.random() * 5000);
		});
	}

	/** The per-order limit, as the API documents it. */
	async function learnOrderLimit() {
		try {
			const doc = await (await fetch("/openapi.json")).json();
			const max = doc.components.schemas.ReserveRequest.properties.count.maximum;
			if (Number.isInteger(max) && max > 0) {
				maxPerOrder = max;
				$("count").max = String(max);
				updateCountHint();
			}
		} catch {
			// The server still refuses an order over the limit (422), with a message.
		}
	}

	window.BoxOffice.shows = {
		selected,
		nameOf: id => rows.get(id)?.show.name ?? "this show",
		maxPerOrder: () => maxPerOrder,
		/** Chooses a show (an order taken up from an earlier visit). */
		choose(id) {
			const entry = rows.get(id);
			if (entry) entry.input.checked = true;
			for (const each of rows.values()) renderRow(each);
			updateCountHint();
		},
		/** Where to go to choose a show. */
		focusChoice: () => (showList.querySelector("input:not(:disabled)") ?? showList).focus?.(),
		/** Starts the list; resolves once it is first shown. */
		start(orderForm) {
			form = orderForm;
			showList.addEventListener("change", () => {
				updateCountHint();
				for (const entry of rows.values()) renderRow(entry);
			});
			learnOrderLimit();
			connectEvents();
			return listed;
		}
	};
})();
