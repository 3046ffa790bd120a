/**
 * Hostile clients against the whole system as an operator runs it, over real HTTP: method tricks,
 * broken bodies, lying headers, guessed keys or ids, and tricks at the front door. Each case checks
 * the status, that the answer is a JSON error with a message (and nothing internal), and that no
 * seat or store changed. The same cases attack every documented configuration that changes the
 * HTTP path (test/support/hostile-system.ts), each on a system of its own.
 */
import { bodyAndFieldCases } from "../support/hostile-bodies";
import { frontDoorCases } from "../support/hostile-door";
import { methodAndIdCases } from "../support/hostile-methods";
import { HOSTILE_CONFIGS, hostileSystem } from "../support/hostile-system";

describe.each(HOSTILE_CONFIGS)("hostile clients, $name", config => {
	const h = hostileSystem(config);

	methodAndIdCases(h);
	bodyAndFieldCases(h);
	frontDoorCases(h);

	it("leaves every process of the system running", async () => {
		expect(h.system.alive()).toBe(true);
		expect((await h.call("GET", "/health")).status).toBe(200);
	});
});
