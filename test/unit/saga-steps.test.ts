/**
 * The saga's table (lib/checkout/saga-steps.ts) names real actions: every step, undo and the fail
 * record are actions the shows and reservations services register, so the table cannot drift from
 * the services it orchestrates.
 */
import type { ServiceBroker } from "moleculer";
import { CHECKOUT_STEPS, FAIL_CHECKOUT } from "../../lib/checkout/saga-steps";
import { reservationsSchema, showsSchema, startBroker } from "./helpers";

let broker: ServiceBroker;

beforeAll(async () => {
	broker = await startBroker([showsSchema(), reservationsSchema()]);
});
afterAll(() => broker.stop());

it("names only actions the services register, each step's undo included", () => {
	const named = Object.values(CHECKOUT_STEPS).flatMap(step =>
		step.undo ? [step.action, step.undo] : [step.action]
	);
	const missing = [...named, FAIL_CHECKOUT].filter(
		action => !broker.registry.actions.isAvailable(action)
	);
	expect(missing).toEqual([]);
	expect(named).toHaveLength(6);
});

it("has no undo after the pivot: once seats are sold a checkout only goes forward", () => {
	expect(CHECKOUT_STEPS.pivot.undo).toBeNull();
	expect(CHECKOUT_STEPS.confirm.undo).toBeNull();
});
