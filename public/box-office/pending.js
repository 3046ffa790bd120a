/*
 * Orders sent and not yet answered, kept in localStorage (key and body, the name included) until a
 * definite answer, so that an order whose tab closed first is sent again on the next visit, under
 * the same key: the server replays it if it was booked, and books it if it never arrived.
 */
"use strict";

(() => {
	const STORAGE_KEY = "box-office-pending";
	/**
	 * An unanswered order older than this is not sent again: the server keeps a key 24 hours, and
	 * only within that does resending it replay instead of booking twice.
	 */
	const MAX_AGE_MS = 12 * 3600 * 1000;

	/** An order as kept: its key, and a body that reads as an order. */
	function wellFormed(p) {
		try {
			const order = JSON.parse(p.body);
			return typeof p.key === "string" && typeof order.showID === "string" && order.count > 0;
		} catch {
			return false;
		}
	}

	function stored() {
		try {
			const list = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]");
			return Array.isArray(list) ? list.filter(p => p && wellFormed(p)) : [];
		} catch {
			return [];
		}
	}

	function store(list) {
		try {
			if (list.length) localStorage.setItem(STORAGE_KEY, JSON.stringify(list));
			else localStorage.removeItem(STORAGE_KEY);
		} catch {
			// Private mode: a closed tab's order cannot be taken up later.
		}
	}

	const others = order => stored().filter(p => p.key !== order.key);

	window.BoxOffice.pending = {
		/** Before sending: the order ({ key, body }) is kept until drop(). */
		keep: order =>
			store([...others(order), { key: order.key, body: order.body, at: Date.now() }]),
		/** A definite answer came: nothing is left to send again. */
		drop: order => store(others(order)),
		/** The orders left unanswered, oldest first, each `tooOld` or not to be sent again. */
		unanswered: () => stored().map(p => ({ ...p, tooOld: Date.now() - p.at > MAX_AGE_MS }))
	};
})();
