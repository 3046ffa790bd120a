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
import { quarantineReports } from "./store-quarantine";
import type { HoldView, PublicShow, Reservation } from "./types";

interface ReplHelpers {
	table(rows: unknown[][], options?: unknown): string;
}

/** What moleculer-repl 0.8 hands to a custom command's `parse` hook (a commander Command). */
interface ParsedCommand {
	args: string[];
	params?: unknown;
}

export interface CustomCommand {
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

/** A refusal or failure in words: validation errors become their field messages, never JSON. */
export function describeError(err: unknown): string {
	const e = err as { message?: string; type?: string; code?: number; data?: unknown };
	const reasons =
		e.type === "VALIDATION_ERROR" && Array.isArray(e.data)
			? e.data.map(d => (d as { message?: string }).message).filter(Boolean)
			: [];
	const text = reasons.length > 0 ? reasons.join("; ") : (e.message ?? String(err));
	return e.code && e.code >= 400 && e.code < 500 ? `Refused: ${text}` : `Failed: ${text}`;
}

class UsageError extends Error {}

function wholeNumber(name: string, raw: string): number {
	const value = Number(raw);
	if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value))
		throw new UsageError(`${name} must be a whole number of seats, not "${raw}"`);
	return value;
}

/**
 * One operator command: `usage` names its arguments (all required), `run` gets them by name.
 * A wrong count or a malformed number prints the usage; a refusal from a service prints its reason.
 */
function command(
	usage: string,
	description: string,
	run: (broker: ServiceBroker, args: string[], helpers: ReplHelpers) => Promise<void>
): CustomCommand {
	const [name, ...argNames] = usage.split(" ");
	return {
		command: name,
		description: argNames.length > 0 ? `${argNames.join(" ")}  ${description}` : description,
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
				if (err instanceof UsageError) console.log(`${err.message}. Usage: ${usage}`);
				else console.log(describeError(err));
			}
		}
	};
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
			const holds = await broker.call<HoldView[], object>("shows.holds", {});
			print(
				helpers,
				["show", "checkout", "seats", "expires"],
				holds.map(h => [h.showID, h.holdId, h.count, when(h.expiresAt)])
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
			console.log(
				`Canceled ${reservation._id}: ${reservation.guests} seat(s) of show ${reservation.showID} back on sale`
			);
		}
	)
];
