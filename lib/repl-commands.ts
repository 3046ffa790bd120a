/**
 * Operator commands for the Moleculer REPL (`npm run repl`). They call the services' actions
 * through the broker, the only way operator actions can be reached. Moleculer's own commands
 * (`services`, `nodes`, `call`, `metrics`, ...) stay available beside them.
 */
import type { ServiceBroker } from "moleculer";
import type { HoldView, PublicShow, Reservation } from "./types";

interface ReplHelpers {
	table(rows: unknown[][], options?: unknown): string;
}

interface ReplArgs {
	options: Record<string, unknown>;
	[argument: string]: unknown;
}

interface CustomCommand {
	command: string;
	description: string;
	// Moleculer's typings say `string[]`; moleculer-repl 0.8 passes the parsed `ReplArgs`.
	action(broker: ServiceBroker, args: string[] | ReplArgs, helpers: ReplHelpers): Promise<void>;
}

function when(epochMs: number | null): string {
	return epochMs ? new Date(epochMs).toISOString().replace("T", " ").slice(0, 19) : "-";
}

function print(helpers: ReplHelpers, header: string[], rows: unknown[][]): void {
	console.log(rows.length > 0 ? helpers.table([header, ...rows]) : "(none)");
}

/** Runs a command, printing a refusal (bad id, too small a house, ...) instead of throwing. */
function command(
	spec: string,
	description: string,
	run: (broker: ServiceBroker, args: ReplArgs, helpers: ReplHelpers) => Promise<void>
): CustomCommand {
	return {
		command: spec,
		description,
		async action(broker, args, helpers) {
			try {
				await run(broker, args as ReplArgs, helpers);
			} catch (err) {
				const e = err as { message?: string; data?: unknown };
				console.log(`Refused: ${e.message}`, e.data ? JSON.stringify(e.data) : "");
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
		async (broker, args, helpers) => {
			const rows = await broker.call<Reservation[], object>("reservations.listByShow", {
				showID: String(args.showID)
			});
			print(
				helpers,
				["id", "name", "guests", "status", "created"],
				rows.map(r => [r._id, r.name, r.guests, r.status, when(r.createdAt)])
			);
		}
	),

	command("holds", "List live seat holds and their deadlines", async (broker, _args, helpers) => {
		const holds = await broker.call<HoldView[], object>("shows.holds", {});
		print(
			helpers,
			["show", "checkout", "seats", "expires"],
			holds.map(h => [h.showID, h.holdId, h.count, when(h.expiresAt)])
		);
	}),

	command(
		"add-show <name> <houseSize>",
		'Add a show, e.g. add-show "Hamlet" 120',
		async (broker, args, helpers) => {
			const show = await broker.call<PublicShow, object>("shows.create", {
				name: String(args.name),
				houseSize: Number(args.houseSize)
			});
			console.log(`Added ${show.name} (${show._id}) with ${show.houseSize} seats`);
			await printShows(broker, helpers);
		}
	),

	command(
		"resize <showID> <houseSize>",
		"Change a show's house size (never below the seats held or sold)",
		async (broker, args) => {
			const show = await broker.call<PublicShow, object>("shows.resize", {
				showID: String(args.showID),
				houseSize: Number(args.houseSize)
			});
			console.log(`${show.name}: ${show.houseSize} seats, ${show.available} available`);
		}
	),

	command(
		"cancel <reservationId>",
		"Cancel a reservation; its seats go back on sale",
		async (broker, args) => {
			const reservation = await broker.call<Reservation, object>("reservations.cancel", {
				id: String(args.reservationId)
			});
			console.log(
				`Canceled ${reservation._id}: ${reservation.guests} seat(s) of ${reservation.showID} back on sale`
			);
		}
	)
];
