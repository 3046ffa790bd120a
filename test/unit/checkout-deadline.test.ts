/**
 * Every step of a checkout carries its deadline (`ctx.meta.deadline`, epoch ms): shows refuses a
 * hold or a sale that arrives after it (plus the clock-skew allowance), and a hold made for a
 * checkout frees itself at that deadline rather than after HOLD_TTL, so a late step never keeps
 * seats off sale. A step without a deadline (a node of an older release) keeps today's behaviour.
 */
import type { Context, ServiceBroker } from "moleculer";
import { appConfig } from "../../lib/common/config";
import type { HoldView } from "../../lib/common/types";
import {
	apiSchema,
	createShow,
	getShow,
	newId,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";

type HoldAnswer = HoldView & { created: boolean };

const SKEW = appConfig.clockSkewMs;

describe("checkout deadline", () => {
	let broker: ServiceBroker;
	const seenDeadlines: unknown[] = [];

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema({
				hooks: {
					before: {
						holdSeats(ctx: Context<unknown, { deadline?: number }>) {
							seenDeadlines.push(ctx.meta.deadline);
						}
					}
				}
			}),
			reservationsSchema(),
			apiSchema()
		]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	const hold = (showID: string, holdId: string, count: number, deadline?: number) =>
		broker.call<HoldAnswer, object>(
			"shows.holdSeats",
			{ showID, holdId, count },
			deadline === undefined ? {} : { meta: { deadline } }
		);

	it("refuses a hold whose deadline has passed, and holds no seat for it", async () => {
		const show = await createShow(broker, 10);
		const late = Date.now() - SKEW - 1000;
		await expect(hold(show._id, newId("late"), 2, late)).rejects.toMatchObject({
			code: 409,
			type: "CHECKOUT_DEADLINE_PASSED"
		});
		expect((await getShow(broker, show._id)).available).toBe(10);
	});

	it("lets a hold made for a checkout expire at its deadline plus the skew, not HOLD_TTL", async () => {
		const show = await createShow(broker, 10);
		const deadline = Date.now() + 200;
		const held = await hold(show._id, newId("soon"), 2, deadline);
		expect(held.expiresAt).toBe(deadline + SKEW);
		const untimed = await hold(show._id, newId("untimed"), 2);
		expect(untimed.expiresAt! - Date.now()).toBeGreaterThan(60 * 1000);
	});

	it("refuses a sale past the deadline, and sells nothing", async () => {
		const show = await createShow(broker, 10);
		const holdId = newId("slow");
		await hold(show._id, holdId, 2, Date.now() + 60 * 1000);
		const late = Date.now() - SKEW - 1000;
		await expect(
			broker.call(
				"shows.confirmHold",
				{ showID: show._id, holdId },
				{ meta: { deadline: late } }
			)
		).rejects.toMatchObject({ code: 409, type: "CHECKOUT_DEADLINE_PASSED" });
		const { state } = await broker.call<{ state: string }, object>("shows.getHold", {
			showID: show._id,
			holdId
		});
		expect(state).toBe("held");
	});

	it("sends the checkout's deadline with its steps", async () => {
		const show = await createShow(broker, 10);
		seenDeadlines.length = 0;
		const before = Date.now();
		await broker.call("api.checkout", { showID: show._id, name: "Ada", count: 1 });
		expect(seenDeadlines).toHaveLength(1);
		const deadline = seenDeadlines[0] as number;
		expect(deadline).toBeGreaterThanOrEqual(before + appConfig.checkoutTimeoutMs);
		expect(deadline).toBeLessThanOrEqual(Date.now() + appConfig.checkoutTimeoutMs);
	});
});
