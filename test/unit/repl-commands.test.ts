/**
 * The operator's REPL commands answer in plain words: tables, sentences, the usage for wrong
 * arguments, a refusal's reason; never a stack trace or raw JSON. Driven by calling each command's
 * action on an in-process broker with the real services, with the console captured.
 */
import path from "node:path";
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
	const cmd = replCommands.find(c => c.command.split(" ")[0] === name);
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
		`Canceled ${booked._id}: 2 seat(s) of Shakespeare Play (${PLAY}) back on sale`
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

it("words a refused argument in the operator's terms, with the usage, not the validator's text", async () => {
	expect(await repl("add-show", "Othello", "0")).toBe(
		'houseSize must be at least 1 seat, not "0". Usage: add-show <name> <houseSize>'
	);
	expect(await repl("add-show", "", "10")).toBe(
		"name must have at least one visible character. Usage: add-show <name> <houseSize>"
	);
	expect(await repl("add-show", "   ", "10")).toBe(
		"name must have at least one visible character. Usage: add-show <name> <houseSize>"
	);
	expect(await repl("add-show", "x".repeat(201), "10")).toBe(
		"name must be at most 200 characters long. Usage: add-show <name> <houseSize>"
	);
	expect(await repl("resize", PLAY, "0")).toBe(
		'houseSize must be at least 1 seat, not "0". Usage: resize <showID> <houseSize>'
	);
	expect(await repl("resize", "Hamlet", "10")).toBe(
		'"Hamlet" is not a show id (24 hex digits, as `shows` lists them). Usage: resize <showID> <houseSize>'
	);
	expect(await repl("reservations", "Hamlet")).toBe(
		'"Hamlet" is not a show id (24 hex digits, as `shows` lists them). Usage: reservations <showID>'
	);
	expect(await repl("cancel", "no such id!")).toBe(
		'"no such id!" is not a reservation id (8 to 64 letters, digits, - or _). Usage: cancel <reservationId>'
	);
	const shows = await repl("shows");
	expect(shows).not.toMatch(/Othello/);
});

it("gives a refusal's reason in words", async () => {
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
		new RegExp(
			`${PLAY}\\s*│\\s*Shakespeare Play\\s*│\\s*0123456789abcdef0123456789abcde0\\s*│\\s*3\\s*│\\s*\\d{4}-\\S+Z`
		)
	);
});

it("help lists each command with its arguments in the command column, aligned as Moleculer's own", () => {
	// The program moleculer-repl 0.8 builds: its own commands, then ours registered as it does.
	const replDir = path.dirname(require.resolve("moleculer-repl"));
	const { Command } = require(require.resolve("commander", { paths: [replDir] })) as {
		Command: new () => HelpProgram;
	};
	const program = new Command();
	(require(path.join(replDir, "src", "commands")) as (p: HelpProgram, b: ServiceBroker) => void)(
		program,
		broker
	);
	for (const def of replCommands) program.command(def.command).description(def.description);
	const rows = program.helpInformation().split("\n");
	const descriptionColumn = (row: string | undefined, text: string) => row?.indexOf(text);
	const call = rows.find(r => r.trimStart().startsWith("call "));
	const column = descriptionColumn(call, "Call an action");
	for (const def of replCommands) {
		const row = rows.find(r => r.trimStart().startsWith(`${def.command} `));
		expect({ row, column: descriptionColumn(row, def.description) }).toEqual({
			row: expect.stringMatching(new RegExp(`^  ${def.command.replace(/[<>]/g, ".")} +\\S`)),
			column
		});
	}
	expect(rows).toContainEqual(
		expect.stringMatching(
			/^ {2}add-show <name> <houseSize> +Add a show, e\.g\. add-show "Hamlet" 120$/
		)
	);
});

interface HelpProgram {
	command(spec: string): { description(text: string): unknown };
	helpInformation(): string;
}
