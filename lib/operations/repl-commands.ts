/**
 * Operator commands for the Moleculer REPL (`npm start -- --repl` on an embedded system,
 * `npm run repl` joining a cluster). They call the services' actions through the broker, the only
 * way operator actions can be reached. Moleculer's own commands (`services`, `nodes`, `call`,
 * `metrics`, `exit`, ...) stay available beside them.
 *
 * Every answer is a plain sentence or a table: a refusal says why, a repeat says what happened,
 * wrong arguments print the command's usage. Nothing reaches the operator as a stack trace or JSON.
 */
import type { ServiceBroker } from "moleculer";
import { quarantineReports } from "../store/store-quarantine";
import type { HoldView, PublicShow, Reservation } from "../common/types";

interface ReplHelpers {
	table(rows: unknown[][], options?: unknown): string;
}

/** What moleculer-repl 0.8 hands to a custom command's `parse` hook (a commander Command). */
interface ParsedCommand {
	args: string[];
	params?: unknown;
}

interface CustomCommand {
	command: string;
	description: string;
	/** Extra arguments reach `action`, which answers with the usage instead of commander's error. */
	allowUnknownOptions: true;
	parse(this: unknown, command: ParsedCommand): void;
	// Moleculer's typings say `string[]`; with `parse` below moleculer-repl passes `{ operands }`.
	action(
		broker: ServiceBroker,
		args: string[] | { operands?: string[] },
		helpers: ReplHelpers
	): Promise<void>;
}

/** Instant with its time zone (UTC, `Z`), to the second. */
export function when(epochMs: number | null | undefined): string {
	return epochMs ? new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

function print(helpers: ReplHelpers, header: string[], rows: unknown[][]): void {
	console.log(rows.length > 0 ? helpers.table([header, ...rows]) : "(none)");
}

/** What an argument is, for refusals worded in the operator's terms. */
interface Argument {
	/** The service's parameter it becomes, when named otherwise. */
	field?: string;
	/** A valid value, for a malformed one: `"x" is not <kind>`. */
	kind?: string;
	/** What a number of it counts. */
	unit?: string;
}

const ARGUMENTS: Record<string, Argument> = {
	showID: { kind: "a show id (24 hex digits, as `shows` lists them)" },
	reservationId: { field: "id", kind: "a reservation id (8 to 64 letters, digits, - or _)" },
	houseSize: { unit: "seat" },
	name: {}
};

class UsageError extends Error {}

interface ValidationItem {
	type?: string;
	field?: string;
	expected?: unknown;
}

/** One validator complaint about an argument as a sentence about what the operator typed. */
function complaint(item: ValidationItem, argName: string, typed: string): string {
	const { unit = "", kind = "accepted here" } = ARGUMENTS[argName] ?? {};
	const count = (n: unknown) => (unit ? `${n} ${unit}${n === 1 ? "" : "s"}` : String(n));
	switch (item.type) {
		case "numberMin":
			return `${argName} must be at least ${count(item.expected)}, not "${typed}"`;
		case "numberMax":
			return `${argName} must be at most ${count(item.expected)}, not "${typed}"`;
		case "stringEmpty":
		case "stringMin":
			return item.expected === 1 || item.type === "stringEmpty"
				? `${argName} must have at least one visible character`
				: `${argName} must be at least ${item.expected} characters long`;
		case "stringMax":
			return `${argName} must be at most ${item.expected} characters long`;
		case "stringPattern":
			// The name policy says what it misses ("no control characters", lib/common/text.ts).
			if (typeof item.expected === "string" && /^(no|at least) /.test(item.expected))
				return `${argName} must have ${item.expected}`;
			return `"${typed}" is not ${kind}`;
		default:
			return `"${typed}" is not ${kind}`;
	}
}

/**
 * A service's validation error about the operator's arguments, as a UsageError in their words (the
 * validator's own text names the service's fields); null for any other error.
 */
function argumentError(err: unknown, argNames: string[], operands: string[]): UsageError | null {
	const e = err as { type?: string; data?: unknown };
	if (e.type !== "VALIDATION_ERROR" || !Array.isArray(e.data)) return null;
	const sentences = (e.data as ValidationItem[]).map(item => {
		const at = argNames.findIndex(a => (ARGUMENTS[a]?.field ?? a) === item.field);
		return at < 0 ? null : complaint(item, argNames[at], operands[at]);
	});
	if (sentences.some(s => s === null)) return null;
	return new UsageError([...new Set(sentences)].join("; "));
}

/** A refusal or failure in words. */
export function describeError(err: unknown): string {
	const e = err as { message?: string; code?: number };
	const text = e.message ?? String(err);
	return e.code && e.code >= 400 && e.code < 500 ? `Refused: ${text}` : `Failed: ${text}`;
}

function wholeNumber(name: string, raw: string): number {
	const value = Number(raw);
	if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value))
		throw new UsageError(`${name} must be a whole number of seats, not "${raw}"`);
	return value;
}

/**
 * One operator command: `usage` names its arguments (all required), `run` gets them by name.
 * Declared with its arguments so that `help` lists them in the command column, as Moleculer's own
 * commands are. A missing argument is commander's to report (before `action` runs); extra ones or a
 * malformed value print the usage; a refusal from a service prints its reason.
 */
function command(
	usage: string,
	description: string,
	run: (broker: ServiceBroker, args: string[], helpers: ReplHelpers) => Promise<void>
): CustomCommand {
	const argNames = usage
		.split(" ")
		.slice(1)
		.map(a => a.replace(/[<>]/g, ""));
	return {
		command: usage,
		description,
		allowUnknownOptions: true,
		parse(parsed) {
			parsed.params = { operands: [...parsed.args] };
		},
		async action(broker, args, helpers) {
			const operands = (Array.isArray(args) ? args : (args.operands ?? [])).map(String);
			if (operands.length !== argNames.length) {
				console.log(`Usage: ${usage}  (${description})`);
				return;
			}
			try {
				await run(broker, operands, helpers);
			} catch (err) {
				const usageError =
					err instanceof UsageError ? err : argumentError(err, argNames, operands);
				if (usageError) console.log(`${usageError.message}. Usage: ${usage}`);
				else console.log(describeError(err));
			}
		}
	};
}

/** A show's name by its id, for answers that would otherwise name a show by its id alone. */
async function showNames(broker: ServiceBroker): Promise<Map<string, string>> {
	const shows = await broker.call<PublicShow[], object>("shows.list", {});
	return new Map(shows.map(s => [s._id, s.name]));
}

async function printShows(broker: ServiceBroker, helpers: ReplHelpers) {
	const shows = await broker.call<PublicShow[], object>("shows.list", {});
	print(
		helpers,
		["id", "name", "house", "reserved", "available"],
		shows.map(s => [s._id, s.name, s.houseSize, s.reserved, s.available])
	);
}

export const replCommands: CustomCommand[] = [
	command("shows", "List shows with their seats", async (broker, _args, helpers) => {
		await printShows(broker, helpers);
	}),

	command(
		"reservations <showID>",
		"List the reservations of a show, newest first",
		async (broker, [showID], helpers) => {
			const rows = await broker.call<Reservation[], object>("reservations.listByShow", {
				showID
			});
			print(
				helpers,
				["id", "name", "guests", "status", "created"],
				rows.map(r => [r._id, r.name, r.guests, r.status, when(r.createdAt)])
			);
		}
	),

	command(
		"holds",
		"List live seat holds and their deadlines (UTC)",
		async (broker, _args, helpers) => {
			const [holds, names] = await Promise.all([
				broker.call<HoldView[], object>("shows.holds", {}),
				showNames(broker)
			]);
			print(
				helpers,
				["show", "name", "checkout", "seats", "expires"],
				holds.map(h => [
					h.showID,
					names.get(h.showID) ?? "-",
					h.holdId,
					h.count,
					when(h.expiresAt)
				])
			);
		}
	),

	command(
		"quarantine",
		"Unreadable lines of the embedded stores, set aside at start (files beside the store)",
		async (broker, _args, helpers) => {
			const reports = quarantineReports(broker);
			if (reports.length === 0) console.log("No store lines in quarantine");
			else
				print(
					helpers,
					["node", "service", "lines", "files"],
					reports.map(r => [r.nodeID, r.service, r.quarantined, r.files.join(", ")])
				);
		}
	),

	command(
		"add-show <name> <houseSize>",
		'Add a show, e.g. add-show "Hamlet" 120',
		async (broker, [name, houseSize], helpers) => {
			const show = await broker.call<PublicShow, object>("shows.create", {
				name,
				houseSize: wholeNumber("houseSize", houseSize)
			});
			console.log(`Added ${show.name} (${show._id}) with ${show.houseSize} seats`);
			await printShows(broker, helpers);
		}
	),

	command(
		"resize <showID> <houseSize>",
		"Change a show's house size (never below the seats held or sold)",
		async (broker, [showID, houseSize]) => {
			const show = await broker.call<PublicShow, object>("shows.resize", {
				showID,
				houseSize: wholeNumber("houseSize", houseSize)
			});
			console.log(`${show.name}: ${show.houseSize} seats, ${show.available} available`);
		}
	),

	command(
		"cancel <reservationId>",
		"Cancel a reservation; its seats go back on sale once",
		async (broker, [id]) => {
			// Looked up first so that a repeat says so: the cancel itself is idempotent and
			// answers a repeat exactly like the first time.
			const before = await broker.call<Reservation, object>("reservations.get", { id });
			if (before.status === "canceled") {
				console.log(
					`${id} was already canceled (${when(before.updatedAt)}); no seats moved`
				);
				return;
			}
			const reservation = await broker.call<Reservation, object>("reservations.cancel", {
				id
			});
			// The cancel is done: a show that cannot be named now is named by its id alone.
			const name = await showNames(broker)
				.then(names => names.get(reservation.showID))
				.catch(() => undefined);
			const show = name ? `${name} (${reservation.showID})` : `show ${reservation.showID}`;
			console.log(
				`Canceled ${reservation._id}: ${reservation.guests} seat(s) of ${show} back on sale`
			);
		}
	)
];
