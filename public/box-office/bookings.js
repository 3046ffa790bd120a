/*
 * The bookings made in this browser: remembered in localStorage (ids, shows and seats, no names),
 * each shown with its state as the server has it (GET /reservations/:id on every visit, so a
 * booking canceled elsewhere shows canceled) and a cancel, asked twice, then DELETE.
 */
"use strict";

(() => {
	const { $, say, complain, seats, theSeatsAre, isAre } = window.BoxOffice;

	/** Automatic retries of a cancel after 503 (with its Retry-After). */
	const MAX_AUTO_RETRIES = 4;
	/** Longer waits than this are not waited out. */
	const MAX_AUTO_WAIT_S = 30;
	/** Bookings remembered; the oldest are forgotten past this. */
	const MAX_REMEMBERED = 20;
	const STORAGE_KEY = "box-office-bookings";

	const list = $("booking-list");
	/** Who else needs to know: the order form, of a canceled booking. */
	let listeners = { canceled: () => {} };
	const heading = $("bookings-heading");

	function storedBookings() {
		try {
			const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]");
			return Array.isArray(stored) ? stored : [];
		} catch {
			return [];
		}
	}

	/** Keeps a booking: a new one first, a known one where it was. */
	function storeBooking(booking, first = false) {
		const all = storedBookings();
		const at = all.findIndex(b => b._id === booking._id);
		if (at >= 0 && !first) all[at] = booking;
		else {
			if (at >= 0) all.splice(at, 1);
			all.unshift(booking);
		}
		try {
			localStorage.setItem(STORAGE_KEY, JSON.stringify(all.slice(0, MAX_REMEMBERED)));
		} catch {
			// Private mode: the booking is still shown on this page.
		}
	}

	const urlOf = booking => `/reservations/${encodeURIComponent(booking._id)}`;

	function render(booking, isNew) {
		list.querySelector(`[data-booking-id="${CSS.escape(booking._id)}"]`)?.remove();
		const item = $("booking-template").content.firstElementChild.cloneNode(true);
		item.dataset.bookingId = booking._id;
		item.querySelector(".booking-what").textContent =
			`${seats(booking.guests)} · ${booking.showName}`;
		const link = item.querySelector(".booking-link");
		link.href = urlOf(booking);
		link.querySelector("code").textContent = booking._id;
		const ask = item.querySelector(".cancel");
		const yes = item.querySelector(".cancel-confirm");
		const keep = item.querySelector(".cancel-keep");
		ask.setAttribute(
			"aria-label",
			`Cancel booking of ${seats(booking.guests)} for ${booking.showName}…`
		);
		const asking = on => {
			ask.hidden = on;
			yes.hidden = !on;
			keep.hidden = !on;
			(on ? yes : ask).focus();
		};
		ask.addEventListener("click", () => asking(true));
		keep.addEventListener("click", () => asking(false));
		yes.addEventListener("click", () => cancel(booking, item, yes));
		showState(booking, item);
		list.prepend(item);
		$("bookings").hidden = false;
		if (isNew) heading.focus({ preventScroll: true });
		return item;
	}

	const STATES = {
		confirmed: () => "Confirmed.",
		canceled: booking => `Canceled: ${theSeatsAre(booking.guests)} back on sale.`,
		failed: () => "Not booked: the order failed.",
		gone: () => "Not found at the box office."
	};

	/** The booking's state in words; only a confirmed one can be canceled. */
	function showState(booking, item) {
		const state = STATES[booking.status] ? booking.status : "confirmed";
		item.dataset.state = state;
		item.querySelector(".booking-state").textContent = STATES[state](booking);
		item.querySelector(".booking-actions").hidden = state !== "confirmed";
	}

	async function cancel(booking, item, button) {
		button.disabled = true;
		say(`Canceling ${seats(booking.guests)} for ${booking.showName}…`);
		try {
			// DELETE is idempotent here: repeating it never gives the seats back twice.
			for (let tries = 0; ; tries++) {
				const res = await fetch(urlOf(booking), { method: "DELETE" });
				if (res.ok) {
					booking.status = "canceled";
					storeBooking(booking);
					showState(booking, item);
					listeners.canceled(booking._id);
					heading.focus({ preventScroll: true });
					return say(
						`Canceled: ${seats(booking.guests)} for ${booking.showName} ` +
							`${isAre(booking.guests)} back on sale.`
					);
				}
				const delay = Number(res.headers.get("Retry-After")) || 2;
				if (res.status === 503 && tries < MAX_AUTO_RETRIES && delay <= MAX_AUTO_WAIT_S) {
					say(`The box office is busy. Trying the cancel again in ${delay} s…`);
					await new Promise(resolve => setTimeout(resolve, delay * 1000));
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

	/** The state the server has now (canceled elsewhere, say); unchanged when it cannot say. */
	async function refresh(booking, item) {
		try {
			const res = await fetch(urlOf(booking));
			if (res.status === 404) booking.status = "gone";
			else if (res.ok) booking.status = (await res.json()).status;
			else return;
		} catch {
			return;
		}
		storeBooking(booking);
		showState(booking, item);
	}

	window.BoxOffice.bookings = {
		/** A booking just made (or replayed), from the answer of POST /reserve. */
		add(answer, showName) {
			const booking = {
				_id: answer._id,
				showID: answer.showID,
				showName,
				guests: answer.guests,
				status: answer.status
			};
			storeBooking(booking, true);
			render(booking, true);
			return booking;
		},
		/** The bookings remembered, as stored, then as the server has them. */
		start(others) {
			listeners = others;
			for (const booking of storedBookings().reverse())
				refresh(booking, render(booking, false));
		}
	};
})();
