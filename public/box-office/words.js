/*
 * What the box office says, in one place: the status and alert lines, and numbers of seats that
 * agree with their words (Intl.PluralRules). Loaded first; the other scripts use it.
 */
"use strict";

(() => {
	const $ = id => document.getElementById(id);
	const statusBox = $("status");
	const problemBox = $("problem");
	const plural = new window.Intl.PluralRules("en");

	const one = n => plural.select(n) === "one";

	window.BoxOffice = {
		$,
		/** A progress or result line (announced politely). */
		say(text) {
			problemBox.textContent = "";
			statusBox.textContent = text;
		},
		/** Something went wrong or is missing (announced at once). */
		complain(text) {
			statusBox.textContent = "";
			problemBox.textContent = text;
		},
		/** "1 seat", "2 seats". */
		seats: n => `${n} ${one(n) ? "seat" : "seats"}`,
		/** "the seat is", "the seats are". */
		theSeatsAre: n => (one(n) ? "the seat is" : "the seats are"),
		/** "is" or "are", for n seats. */
		isAre: n => (one(n) ? "is" : "are")
	};
})();
