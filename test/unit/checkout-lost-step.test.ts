/**
 * A checkout step whose request gets no answer at all (lost with a NATS server that died), under
 * the production retry policy: the step gives up after the broker's request timeout and is retried
 * within the checkout's budget, instead of waiting out the whole budget.
 */
import type { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { GATEWAY_CALL_OPTIONS } from "../../lib/gateway/checkout-route";
import type { BookingAnswer } from "../../services/api.service";
import {
	apiSchema,
	createShow,
	getShow,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";

/** One step's wait, and the whole checkout's: room for a lost step and its retry. */
const REQUEST_TIMEOUT_MS = 300;
const CHECKOUT_BUDGET_MS = 3000;

let broker: ServiceBroker;
/** How many requests of each step to lose: they never run and never answer. */
const lose: Record<string, number> = { holdSeats: 0, confirmHold: 0 };

function lost(action: string) {
	return () => {
		if (lose[action] > 0) {
			lose[action]--;
			return new Promise<never>(() => undefined);
		}
	};
}

beforeAll(async () => {
	broker = await startBroker(
		[
			showsSchema({
				hooks: {
					before: { holdSeats: lost("holdSeats"), confirmHold: lost("confirmHold") }
				}
			}),
			reservationsSchema(),
			apiSchema()
		],
		{ retryPolicy: brokerConfig.retryPolicy, requestTimeout: REQUEST_TIMEOUT_MS }
	);
});

afterAll(async () => {
	await broker.stop();
});

it.each(["holdSeats", "confirmHold"])(
	"a lost %s request is retried within the checkout's budget, and the checkout books once",
	async action => {
		const show = await createShow(broker, 10);
		lose[action] = 1;
		const answer = await broker.call<BookingAnswer, object>(
			"api.checkout",
			{ showID: show._id, name: "Ann", count: 2 },
			{ ...GATEWAY_CALL_OPTIONS, timeout: CHECKOUT_BUDGET_MS }
		);
		expect(lose[action]).toBe(0);
		expect(answer).toMatchObject({ status: "confirmed", guests: 2 });
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	}
);
