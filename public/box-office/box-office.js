/*
 * The box office page: the shows with their seats, kept live by GET /events; an order form whose
 * every attempt carries one Idempotency-Key, so a double click, a retry or a lost answer books
 * once; the bookings made here, each with a cancel. Plain browser JavaScript, no build step.
 */
"use strict";

(() => {
	/** Automatic retries of one order after 503 (with its Retry-After) or a lost connection. */
	const MAX_AUTO_RETRIES = 4;
	/** Longer waits than this are not waited out: the user is told when to try again. */
	const MAX_AUTO_WAIT_S = 30;
	/** After the event stream gave up (e.g. the node is full), how long before trying again. */
	const STREAM_RETRY_MS = 15000;
	const STORAGE_KEY = "box-office-bookings";

	const $ = id => document.getElementById(id);
	const form = $("order");
	const showList = $("show-list");
	const countInput = $("count");
	const nameInput = $("name");
	const buyButton = $("buy");
	const liveState = $("live-state");
	const statusBox = $("status");
	const problemBox = $("problem");

	/** id → { show, row, input, seats } in the order the server lists them. */
	const rows = new Map();
	let maxPerOrder = null;
	/** The order being booked: its body and key, kept until a definite answer. */
	let attempt = null;
	let inFlight = false;
	let listShown = false;

	// ---- messages ----------------------------------------------------------------------

	function say(text) {
		problemBox.textContent = "";
		statusBox.textContent = text;
	}

	function complain(text) {
		statusBox.textContent = "";
		problemBox.textContent = text;
	}

	const seatsWord = n => (n === 1 ? "1 seat" : `${n} seats`);
	const showName = id => rows.get(id)?.show.name ?? "this show";

	// ---- the shows -----------------------------------------------------------------------

	function seatsText(show) {
		return show.available > 0 ? `${show.available} of ${show.houseSize} left` : "Sold out";
	}

	function renderRow(entry) {
		const { show, row, input, seats } = entry;
		const soldOut = show.available <= 0;
		row.classList.toggle("sold-out", soldOut);
		input.disabled = soldOut && !input.checked;
		seats.textContent = seatsText(show);
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
		const seats = document.createElement("span");
		seats.className = "show-seats";
		label.append(name, seats);
		row.append(input, label);
		showList.append(row);
		const entry = { show: { ...show }, row, input, seats };
		rows.set(show._id, entry);
		renderRow(entry);
	}

	/** The whole list anew (first load, or a snapshot after a gap), keeping the choice made. */
	function showAll(shows) {
		listShown = true;
		const chosen = selectedShowId();
		showList.textContent = "";
		rows.clear();
		for (const show of shows) addRow(show);
		const keep = chosen && rows.get(chosen);
		if (keep) keep.input.checked = true;
		if (rows.size === 0) showList.textContent = "No shows are on sale right now.";
		updateCountHint();
	}

	/** One show's seats changed somewhere: update its row, and tell the buyer if it matters. */
	function changeSeats(change) {
		const entry = rows.get(change._id);
		if (!entry) return addNewShow(change._id);
		const wasAvailable = entry.show.available;
		Object.assign(entry.show, change);
		renderRow(entry);
		if (entry.input.checked && change.available < wasAvailable && !inFlight) {
			if (change.available === 0) say(`${entry.show.name} has just sold out.`);
			else if (change.available < Number(countInput.value))
				say(`Only ${seatsWord(change.available)} left for ${entry.show.name} now.`);
		}
		updateCountHint();
	}

	async function addNewShow(id) {
		const res = await fetch(`/shows/${encodeURIComponent(id)}`).catch(() => null);
		if (res?.ok && !rows.has(id)) addRow(await res.json());
	}

	function selectedShowId() {
		return showList.querySelector("input[name=showID]:checked")?.value;
	}

	function updateCountHint() {
		const limit = maxPerOrder ? `1 to ${maxPerOrder} seats in one order.` : "At least 1 seat.";
		const entry = rows.get(selectedShowId());
		const left =
			entry && entry.show.available > 0 ? ` ${entry.show.available} left for this show.` : "";
		$("count-hint").textContent = limit + left;
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
				countInput.max = String(max);
				updateCountHint();
			}
		} catch {
			// The server still refuses an order over the limit (422), with a message.
		}
	}

	// ---- ordering ----------------------------------------------------------------------

	function invalid(input, message) {
		input.setAttribute("aria-invalid", "true");
		complain(message);
		input.focus();
		return null;
	}

	/** The order the form describes, or null after saying what is missing. */
	function readOrder() {
		for (const input of [countInput, nameInput]) input.removeAttribute("aria-invalid");
		const showID = selectedShowId();
		if (!showID) {
			complain("Choose a show first.");
			(showList.querySelector("input:not(:disabled)") ?? showList).focus?.();
			return null;
		}
		const count = Number(countInput.value);
		if (!Number.isInteger(count) || count < 1)
			return invalid(countInput, "Enter how many seats you want (a whole number).");
		if (maxPerOrder && count > maxPerOrder)
			return invalid(countInput, `At most ${maxPerOrder} seats can be booked in one order.`);
		const name = nameInput.value.trim();
		if (!name) return invalid(nameInput, "Enter the name for the booking.");
		return { showID, count, name };
	}

	function setInFlight(busy) {
		inFlight = busy;
		buyButton.disabled = busy;
		form.setAttribute("aria-busy", String(busy));
	}

	const wait = ms => new Promise(resolve => setTimeout(resolve, ms));

	function retryAfterSeconds(res, fallback) {
		const value = Number(res.headers.get("Retry-After"));
		return Number.isFinite(value) && value >= 0 ? value : fallback;
	}

	function timeIn(seconds) {
		const at = new Date(Date.now() + seconds * 1000);
		return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
	}

	async function placeOrder(event) {
		event.preventDefault();
		if (inFlight) return;
		const order = readOrder();
		if (!order) return;
		const body = JSON.stringify(order);
		// A new order gets a new key; the same order again (after a lost answer) keeps its key.
		if (!attempt || attempt.body !== body) attempt = { body, key: crypto.randomUUID() };
		setInFlight(true);
		try {
			await sendOrder(attempt, order);
		} finally {
			setInFlight(false);
		}
	}

	async function sendOrder(current, order) {
		const what = `${seatsWord(order.count)} for ${showName(order.showID)}`;
		for (let tries = 0; ; tries++) {
			say(`Booking ${what}…`);
			let res;
			try {
				res = await fetch("/reserve", {
					method: "POST",
					headers: {
						"Content-Type": "application/json",
						"Idempotency-Key": current.key
					},
					body: current.body
				});
			} catch {
				// The order may or may not have arrived: only the same key may ask again.
				if (tries < MAX_AUTO_RETRIES) {
					say(`The connection dropped. Trying again (this cannot book twice)…`);
					await wait(1000 * 2 ** tries);
					continue;
				}
				return complain(
					"Cannot reach the box office. Check your connection and press Book seats " +
						"again: it repeats the same order and never books it twice."
				);
			}
			const answer = await res.json().catch(() => ({}));
			if (res.status === 201 || res.status === 200) {
				attempt = null;
				return booked(answer, order);
			}
			if (res.status === 503) {
				const delay = retryAfterSeconds(res, 2);
				if (tries < MAX_AUTO_RETRIES && delay <= MAX_AUTO_WAIT_S) {
					say(
						`The box office is busy. Trying again in ${delay} s (this cannot book twice)…`
					);
					await wait(delay * 1000);
					continue;
				}
				return complain(
					`The box office is unavailable. Please press Book seats again after ` +
						`${timeIn(delay)}; it repeats the same order and never books it twice.`
				);
			}
			if (res.status === 429) {
				const delay = retryAfterSeconds(res, 60);
				return complain(
					`Too many orders from your connection just now. Nothing was booked. ` +
						`Please try again after ${timeIn(delay)}.`
				);
			}
			if (res.status >= 500)
				return complain(
					"Something went wrong on our side. Press Book seats to try again; it " +
						"repeats the same order and never books it twice."
				);
			// A definite refusal: nothing was booked, and the next try is a new order.
			attempt = null;
			return complain(refusal(res.status, answer, order));
		}
	}

	function refusal(status, error, order) {
		const name = showName(order.showID);
		if (status === 409 && error.type === "NOT_ENOUGH_SEATS") {
			const left = error.data?.remaining;
			return left === 0
				? `Sorry, ${name} is sold out. Nothing was booked.`
				: `Sorry, only ${seatsWord(left)} left for ${name}. Nothing was booked; ` +
						`choose fewer seats and try again.`;
		}
		if (status === 422 && error.type === "TOO_MANY_TICKETS")
			return `At most ${error.data?.max ?? maxPerOrder} seats can be booked in one order. Nothing was booked.`;
		if (status === 404) return `${name} is no longer on sale. Nothing was booked.`;
		if (status === 422) return `Please check the order: ${error.message ?? "it is not valid"}.`;
		return `The order was not booked: ${error.message ?? `error ${status}`}.`;
	}

	// ---- bookings ----------------------------------------------------------------------

	function storedBookings() {
		try {
			return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]");
		} catch {
			return [];
		}
	}

	function storeBooking(booking) {
		const others = storedBookings().filter(b => b._id !== booking._id);
		try {
			localStorage.setItem(STORAGE_KEY, JSON.stringify([booking, ...others].slice(0, 20)));
		} catch {
			// Private mode: the booking is still shown on this page.
		}
	}

	function booked(answer, order) {
		const booking = {
			_id: answer._id,
			showID: answer.showID,
			showName: showName(order.showID),
			guests: answer.guests,
			status: answer.status
		};
		storeBooking(booking);
		renderBooking(booking, true);
		countInput.value = "1";
		say(
			`Booked: ${seatsWord(booking.guests)} for ${booking.showName}. ` +
				`Your reservation is ${booking._id}.`
		);
	}

	function renderBooking(booking, isNew) {
		const list = $("booking-list");
		list.querySelector(`[data-booking-id="${CSS.escape(booking._id)}"]`)?.remove();
		const item = $("booking-template").content.firstElementChild.cloneNode(true);
		item.dataset.bookingId = booking._id;
		item.querySelector(".booking-what").textContent =
			`${seatsWord(booking.guests)} · ${booking.showName}`;
		const link = item.querySelector(".booking-link");
		link.href = `/reservations/${encodeURIComponent(booking._id)}`;
		link.querySelector("code").textContent = booking._id;
		const ask = item.querySelector(".cancel");
		const yes = item.querySelector(".cancel-confirm");
		const keep = item.querySelector(".cancel-keep");
		ask.setAttribute(
			"aria-label",
			`Cancel booking of ${seatsWord(booking.guests)} for ${booking.showName}…`
		);
		const asking = on => {
			ask.hidden = on;
			yes.hidden = !on;
			keep.hidden = !on;
			(on ? yes : ask).focus();
		};
		ask.addEventListener("click", () => asking(true));
		keep.addEventListener("click", () => asking(false));
		yes.addEventListener("click", () => cancelBooking(booking, item, yes));
		showBookingState(booking, item);
		list.prepend(item);
		$("bookings").hidden = false;
		if (isNew) $("bookings-heading").focus({ preventScroll: true });
	}

	function showBookingState(booking, item) {
		const canceled = booking.status === "canceled";
		item.classList.toggle("canceled", canceled);
		item.querySelector(".booking-state").textContent = canceled
			? "Canceled: the seats are back on sale."
			: "Confirmed.";
		item.querySelector(".booking-actions").hidden = canceled;
	}

	async function cancelBooking(booking, item, button) {
		button.disabled = true;
		say(`Canceling ${seatsWord(booking.guests)} for ${booking.showName}…`);
		try {
			const url = `/reservations/${encodeURIComponent(booking._id)}`;
			// DELETE is idempotent here: repeating it never gives the seats back twice.
			for (let tries = 0; ; tries++) {
				const res = await fetch(url, { method: "DELETE" });
				if (res.ok) {
					booking.status = "canceled";
					storeBooking(booking);
					showBookingState(booking, item);
					$("bookings-heading").focus({ preventScroll: true });
					return say(
						`Canceled: ${seatsWord(booking.guests)} for ${booking.showName} are back on sale.`
					);
				}
				const delay = retryAfterSeconds(res, 2);
				if (res.status === 503 && tries < MAX_AUTO_RETRIES && delay <= MAX_AUTO_WAIT_S) {
					say(`The box office is busy. Trying the cancel again in ${delay} s…`);
					await wait(delay * 1000);
					continue;
				}
				const error = await res.json().catch(() => ({}));
				return complain(
					`The booking was not canceled: ${error.message ?? `error ${res.status}`}.`
				);
			}
		} catch {
			complain("Cannot reach the box office. The booking was not canceled; try again.");
		} finally {
			button.disabled = false;
		}
	}

	// ---- start -------------------------------------------------------------------------

	form.addEventListener("submit", placeOrder);
	showList.addEventListener("change", () => {
		updateCountHint();
		for (const entry of rows.values()) renderRow(entry);
	});
	for (const booking of storedBookings().reverse()) renderBooking(booking, false);
	learnOrderLimit();
	connectEvents();
})();
