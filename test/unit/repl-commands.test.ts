/**
 * The operator's REPL commands answer in plain words: tables, sentences, the usage for wrong
 * arguments, a refusal's reason; never a stack trace or raw JSON. Driven by calling each command's
 * action on an in-process broker with the real services, with the console captured.
 */
import type { ServiceBroker } from "moleculer";
import { replCommands } from "../../lib/operations/repl-commands";
import type { Reservation } from "../../lib/common/types";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "./helpers";

const PLAY = "5b805a570cee1505a52bc75d";
let broker: ServiceBroker;

/** moleculer-repl's table helper draws boxes; columns separated by │ are all these tests read. */
const table = (rows: unknown[][]) => rows.map(row => row.join(" │ ")).join("\n");

beforeAll(async () => {
	broker = await startBroker([showsSchema(), reservationsSchema(), apiSchema()]);
});

afterAll(async () => {
	await broker.stop();
});

/** Types one REPL line (already split into words, as moleculer-repl does) and returns its output. */
async function repl(...words: string[]): Promise<string> {
	const [name, ...operands] = words;
	const cmd = replCommands.find(c => c.command === name);
	if (!cmd) throw new Error(`no command ${name}`);
	const parsed = { args: operands, params: undefined as unknown };
	cmd.parse.call(null, parsed);
	const lines: string[] = [];
	const log = jest.spyOn(console, "log").mockImplementation((...parts: unknown[]) => {
		lines.push(parts.join(" "));
	});
	try {
		await cmd.action(broker, parsed.params as { operands: string[] }, { table });
	} finally {
		log.mockRestore();
	}
	const output = lines.join("\n");
	expect(output).not.toMatch(/\n\s+at |[[{]"/); // no stack frame, no JSON
	return output;
}

it("lists the shows as a table", async () => {
	expect(await repl("shows")).toMatch(/Shakespeare Play\s*│\s*50\s*│\s*0\s*│\s*50/);
});

it("cancels once, and says so when the cancel is repeated", async () => {
	const booked = await broker.call<Reservation, object>("api.checkout", {
		name: "Opal",
		count: 2,
		showID: PLAY
	});
	expect(await repl("reservations", PLAY)).toMatch(
		new RegExp(`${booked._id}.*Opal.*confirmed.*\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ`)
	);
	expect(await repl("cancel", booked._id)).toBe(
		`Canceled ${booked._id}: 2 seat(s) of show ${PLAY} back on sale`
	);
	expect(await repl("cancel", booked._id)).toMatch(
		new RegExp(`^${booked._id} was already canceled \\(\\S+Z\\); no seats moved$`)
	);
	const play = await broker.call<{ reserved: number }, object>("shows.get", { showID: PLAY });
	expect(play.reserved).toBe(0);
});

it("prints the usage for a wrong number of arguments", async () => {
	expect(await repl("holds", "x")).toBe(
		"Usage: holds  (List live seat holds and their deadlines (UTC))"
	);
	expect(await repl("cancel")).toMatch(/^Usage: cancel <reservationId> /);
	expect(await repl("add-show", "Hamlet")).toMatch(/^Usage: add-show <name> <houseSize> /);
});

it("names a malformed number instead of sending it", async () => {
	expect(await repl("add-show", "X", "abc")).toBe(
		'houseSize must be a whole number of seats, not "abc". Usage: add-show <name> <houseSize>'
	);
});

it("gives a refusal's reason in words, validation errors included", async () => {
	expect(await repl("resize", PLAY, "0")).toMatch(/^Refused: .*houseSize/);
	expect(await repl("cancel", "no such id!")).toMatch(/^Refused: /);
	expect(await repl("cancel", "0123456789abcdef0123456789abcdef")).toMatch(
		/^Refused: .*not found/i
	);
	const hold = await broker.call("shows.holdSeats", {
		showID: PLAY,
		holdId: "0123456789abcdef0123456789abcde0",
		count: 3
	});
	expect(hold).toBeTruthy();
	expect(await repl("resize", PLAY, "1")).toMatch(/^Refused: cannot make the house 1 seats/);
	expect(await repl("holds")).toMatch(
		/0123456789abcdef0123456789abcde0\s*│\s*3\s*│\s*\d{4}-\S+Z/
	);
});
