/**
 * The name policy of the contract: names are stored in Unicode NFC with at least one visible
 * character; control characters, line and paragraph separators, bidi overrides and isolates and
 * lone surrogates are refused with 422, and a refusal books nothing.
 */
import type { ServiceBroker } from "moleculer";
import {
	apiSchema,
	createShow,
	getShow,
	newId,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";
import { baseUrlOf, postJson, request } from "./http-client";

/** Refused since the first release at the checkout (control characters), newer everywhere else. */
const CONTROL: [string, string][] = [
	["a control character (TAB)", "Ann\tLee"],
	["a C1 control character (NEL)", "Ann\u0085Lee"]
];

const REFUSED: [string, string][] = [
	["a line separator (U+2028)", "a\u2028b"],
	["a paragraph separator (U+2029)", "a\u2029b"],
	["a right-to-left override (U+202E)", "Ann\u202eeeL"],
	["a left-to-right embedding (U+202A)", "\u202aAnn"],
	["a first-strong isolate (U+2068)", "Ann\u2068Lee\u2069"],
	["a lone high surrogate", "Ann\ud800"],
	["a lone low surrogate", "\udc00Ann"],
	["only a zero-width space", "\u200b"],
	["only a combining mark", "\u0301"]
];

describe("names at the checkout", () => {
	let broker: ServiceBroker;
	let base: string;

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema(),
			reservationsSchema(),
			apiSchema({ http: true })
		]);
		base = baseUrlOf(broker);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it.each(REFUSED)("a name with %s is 422 and books nothing", async (_what, name) => {
		const show = await createShow(broker, 10);
		const res = await postJson(base, { showID: show._id, name, count: 1 });
		expect(res).toMatchObject({
			status: 422,
			body: { name: "ValidationError", code: 422, data: [{ field: "name" }] }
		});
		expect(res.body.message).toMatch(/visible.*control characters, line separators or bidi/);
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});

	it("a decomposed (NFD) name is stored and answered in NFC", async () => {
		const show = await createShow(broker, 10);
		const nfd = "Zoe\u0308 Ame\u0301lie";
		const res = await postJson(base, { showID: show._id, name: nfd, count: 1 });
		expect(res.status).toBe(201);
		expect(res.body.name).toBe("Zo\u00eb Am\u00e9lie");
		const read = await request(`${base}/reservations/${res.body._id}`);
		expect(read.body.name).toBe("Zo\u00eb Am\u00e9lie");
		// Already NFC: other scripts, emoji and right-to-left marks go through as sent.
		for (const name of ["李小龍", "Ἀριστοτέλης", "\u05d3\u05d5\u05d3\u200f 2", "Ann 🎭"]) {
			const other = await postJson(base, { showID: show._id, name, count: 1 });
			expect(other).toMatchObject({ status: 201, body: { name } });
		}
	});

	it("the 100-character limit counts characters of the NFC form", async () => {
		const show = await createShow(broker, 10);
		// 100 characters in NFC, 200 UTF-16 units in NFD.
		const res = await postJson(base, {
			showID: show._id,
			name: "e\u0301".repeat(100),
			count: 1
		});
		expect(res).toMatchObject({ status: 201, body: { name: "\u00e9".repeat(100) } });
	});
});

describe("names behind the gateway", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), reservationsSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it.each([...CONTROL, ...REFUSED])(
		"reservations.create refuses a name with %s",
		async (_what, name) => {
			const show = await createShow(broker, 10);
			await expect(
				broker.call("reservations.create", {
					checkoutId: newId("co"),
					showID: show._id,
					name,
					guests: 1,
					fingerprint: "f"
				})
			).rejects.toMatchObject({ name: "ValidationError", code: 422 });
		}
	);

	it.each([...CONTROL, ...REFUSED])(
		"shows.create (the REPL's add-show) refuses a name with %s",
		async (_what, name) => {
			await expect(
				broker.call("shows.create", { name, houseSize: 10 })
			).rejects.toMatchObject({
				name: "ValidationError",
				code: 422
			});
		}
	);

	it("shows.create stores a show's name in NFC", async () => {
		const show = await createShow(broker, 10, "Ba\u0301nk Ban");
		expect(show.name).toBe("B\u00e1nk Ban");
		expect((await getShow(broker, show._id)).name).toBe("B\u00e1nk Ban");
	});
});
