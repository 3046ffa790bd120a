/*
 * The box office's order form: an order, its one Idempotency-Key until a definite answer, and the
 * form's state (ready, sending, waiting, booked, asking). A booked order stays booked: pressing Book again on
 * it asks before booking another, and the same order resends the same key, so a double click, a
 * retry, a lost answer or a closed tab books once. The shows (shows.js), the bookings
 * (bookings.js) and the orders left unanswered (pending.js) are in their own files; words.js says
 * things. Plain browser JavaScript, no build step.
 */
"use strict";

(() => {
	const { say, complain, seats, $ } = window.BoxOffice;
	const shows = window.BoxOffice.shows;
	const bookings = window.BoxOffice.bookings;
	const pending = window.BoxOffice.pending;

	/** Automatic retries of one order after 503 (with its Retry-After) or a lost connection. */
	const MAX_AUTO_RETRIES = 4;
	/** Longer waits than this are not waited out: the user is told when to try again. */
	const MAX_AUTO_WAIT_S = 30;

	const form = $("order");
	const countInput = $("count");
	const nameInput = $("name");
	const buyButton = $("buy");
	const repeatBox = $("repeat");
	const repeatButton = $("repeat-order");

	/** The order being booked, or just booked: its body and key. */
	let attempt = null;
	/**
	 * What the form is doing, shown by renderForm(): `ready`; `sending` an order; `waiting` to send
	 * it again after a 503, until `until` (epoch ms); `booked` (the order as it stands was booked);
	 * `asking` (booked, and Book was pressed again: book another?).
	 */
	let formState = { kind: "ready" };

	function setFormState(state) {
		formState = state;
		renderForm();
	}

	function renderForm() {
		const { kind } = formState;
		const booked = kind === "booked" || kind === "asking";
		const busy = kind === "sending" || kind === "waiting";
		form.dataset.state = kind;
		form.setAttribute("aria-busy", String(busy));
		buyButton.disabled = busy;
		buyButton.textContent = booked
			? "Booked ✓"
			: kind === "waiting"
				? `Busy: trying again in ${secondsLeft(formState.until)} s`
				: "Book seats";
		repeatBox.hidden = kind !== "asking";
		if (kind === "asking")
			repeatButton.textContent = `Book another ${seats(JSON.parse(formState.body).count)}`;
	}

	// ---- the order as the form has it ---------------------------------------------------

	function invalid(input, message) {
		input.setAttribute("aria-invalid", "true");
		complain(message);
		input.focus();
		return null;
	}

	const formOrder = () => ({
		showID: shows.selected(),
		count: Number(countInput.value),
		name: nameInput.value.trim()
	});

	/** The order the form describes, or null after saying what is missing. */
	function readOrder() {
		for (const input of [countInput, nameInput]) input.removeAttribute("aria-invalid");
		const order = formOrder();
		if (!order.showID) {
			complain("Choose a show first.");
			shows.focusChoice();
			return null;
		}
		const max = shows.maxPerOrder();
		if (!Number.isInteger(order.count) || order.count < 1)
			return invalid(countInput, "Enter how many seats you want (a whole number).");
		if (max && order.count > max)
			return invalid(countInput, `At most ${max} seats can be booked in one order.`);
		if (!order.name) return invalid(nameInput, "Enter the name for the booking.");
		return order;
	}

	/** A change of show, seats or name makes another order: the booked one is done with. */
	function orderChanged() {
		if (formState.kind !== "booked" && formState.kind !== "asking") return;
		if (JSON.stringify(formOrder()) === formState.body) return;
		attempt = null;
		setFormState({ kind: "ready" });
	}

	// ---- placing it ---------------------------------------------------------------------

	async function placeOrder(event) {
		event.preventDefault();
		if (formState.kind === "sending" || formState.kind === "waiting") return;
		const order = readOrder();
		if (!order) return;
		const body = JSON.stringify(order);
		if (
			(formState.kind === "booked" || formState.kind === "asking") &&
			formState.body === body
		) {
			setFormState({ ...formState, kind: "asking" });
			return say(
				`Already booked: ${seats(order.count)} for ${shows.nameOf(order.showID)}. ` +
					`To book the same again, press “${repeatButton.textContent}”.`
			);
		}
		// A new order gets a new key; the same order again (after no answer) keeps its key.
		if (!attempt || attempt.body !== body) attempt = { body, key: crypto.randomUUID() };
		await send(attempt);
	}

	/** The booked order once more, asked for: a new order, so a new key. */
	function bookAnother() {
		if (formState.kind !== "asking") return;
		attempt = { body: formState.body, key: crypto.randomUUID() };
		send(attempt);
	}

	async function send(current, note = "") {
		setFormState({ kind: "sending" });
		const order = JSON.parse(current.body);
		const booking = await sendOrder(current, order, note);
		// Booked, unless the form was changed meanwhile: then what it shows is another order.
		const shown = JSON.stringify(formOrder()) === current.body;
		setFormState(
			booking && shown
				? { kind: "booked", body: current.body, id: booking._id }
				: { kind: "ready" }
		);
	}

	/** The booked order was canceled: booking it again is a new order, with a new key. */
	function canceled(id) {
		if (formState.id !== id) return;
		attempt = null;
		setFormState({ kind: "ready" });
	}

	const wait = ms => new Promise(resolve => setTimeout(resolve, ms));

	const secondsLeft = until => Math.max(0, Math.ceil((until - Date.now()) / 1000));

	/**
	 * After a 503: the form waits `seconds`, counting down on its button and in the status, then
	 * the same order goes again under the same key (so it cannot book twice).
	 */
	async function waitToRetry(seconds) {
		const until = Date.now() + seconds * 1000;
		const tell = () =>
			say(`Busy: trying again in ${secondsLeft(until)} s (this cannot book twice)…`);
		setFormState({ kind: "waiting", until });
		tell();
		const ticking = setInterval(() => {
			renderForm();
			tell();
		}, 1000);
		await wait(seconds * 1000);
		clearInterval(ticking);
		setFormState({ kind: "sending" });
	}

	function retryAfterSeconds(res, fallback) {
		const value = Number(res.headers.get("Retry-After"));
		return Number.isFinite(value) && value >= 0 ? value : fallback;
	}

	function timeIn(seconds) {
		const at = new Date(Date.now() + seconds * 1000);
		return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
	}

	/** Sends one order until a definite answer or giving up; the booking, or null. */
	async function sendOrder(current, order, note) {
		const what = `${seats(order.count)} for ${shows.nameOf(order.showID)}`;
		pending.keep(current);
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
				complain(
					"Cannot reach the box office. Check your connection and press Book seats " +
						"again: it repeats the same order and never books it twice."
				);
				return null;
			}
			const answer = await res.json().catch(() => ({}));
			if (res.status === 201 || res.status === 200) {
				pending.drop(current);
				const booking = bookings.add(answer, shows.nameOf(order.showID));
				// The id is in the booking below, where it does not break across lines.
				say(
					`Booked: ${seats(booking.guests)} for ${booking.showName}. Keep the ` +
						`reservation id below: it is the way to see or cancel the booking.${note}`
				);
				return booking;
			}
			if (res.status === 503) {
				const delay = retryAfterSeconds(res, 2);
				if (tries < MAX_AUTO_RETRIES && delay <= MAX_AUTO_WAIT_S) {
					await waitToRetry(delay);
					continue;
				}
				complain(
					`The box office is unavailable. Please press Book seats again after ` +
						`${timeIn(delay)}; it repeats the same order and never books it twice.`
				);
				return null;
			}
			if (res.status === 429) {
				// Refused before booking anything: the order is not pending.
				pending.drop(current);
				const delay = retryAfterSeconds(res, 60);
				complain(
					`Too many orders from your connection just now. Nothing was booked. ` +
						`Please try again after ${timeIn(delay)}.`
				);
				return null;
			}
			if (res.status >= 500) {
				complain(
					"Something went wrong on our side. Press Book seats to try again; it " +
						"repeats the same order and never books it twice."
				);
				return null;
			}
			// A definite refusal: nothing was booked, and the next try is a new order.
			pending.drop(current);
			attempt = null;
			complain(refusal(res.status, answer, order));
			return null;
		}
	}

	function refusal(status, error, order) {
		const name = shows.nameOf(order.showID);
		if (status === 409 && error.type === "NOT_ENOUGH_SEATS") {
			const left = error.data?.remaining;
			return left === 0
				? `Sorry, ${name} is sold out. Nothing was booked.`
				: `Sorry, only ${seats(left)} left for ${name}. Nothing was booked; ` +
						`choose fewer seats and try again.`;
		}
		if (status === 422 && error.type === "TOO_MANY_TICKETS")
			return `At most ${error.data?.max ?? shows.maxPerOrder()} seats can be booked in one order. Nothing was booked.`;
		if (status === 404) return `${name} is no longer on sale. Nothing was booked.`;
		if (status === 422) return `Please check the order: ${error.message ?? "it is not valid"}.`;
		return `The order was not booked: ${error.message ?? `error ${status}`}.`;
	}

	// ---- orders left unanswered, across visits ---------------------------------------------

	/** The orders an earlier visit sent without an answer, each sent again under its own key. */
	async function takeUpPending() {
		for (const left of pending.unanswered()) {
			const order = JSON.parse(left.body);
			if (left.tooOld) {
				pending.drop(left);
				complain(
					`An order of ${seats(order.count)} for ${shows.nameOf(order.showID)} from ` +
						`${new Date(left.at).toLocaleString()} never got an answer, and is too ` +
						`old to send again safely. Nothing was sent.`
				);
				continue;
			}
			shows.choose(order.showID);
			countInput.value = String(order.count);
			nameInput.value = order.name;
			attempt = { body: left.body, key: left.key };
			await send(attempt, " (The order left unfinished on your last visit.)");
		}
	}

	// ---- start ---------------------------------------------------------------------------

	form.addEventListener("submit", placeOrder);
	form.addEventListener("input", orderChanged);
	form.addEventListener("change", orderChanged);
	repeatButton.addEventListener("click", bookAnother);
	shows
		.start({ busy: () => formState.kind === "sending", count: () => Number(countInput.value) })
		.then(takeUpPending);
	bookings.start({ canceled });
	renderForm();
})();
