/**
 * Ends a jest run with one plain line, "tests: N passed, N failed", that any CI can read.
 */
"use strict";

class SummaryReporter {
	onRunComplete(_contexts, results) {
		const skipped = results.numPendingTests + results.numTodoTests;
		process.stderr.write(
			`\ntests: ${results.numPassedTests} passed, ${results.numFailedTests} failed` +
				(skipped ? `, ${skipped} skipped` : "") +
				"\n"
		);
	}
}

module.exports = SummaryReporter;
