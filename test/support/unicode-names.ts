/**
 * The property of the name policy, shared by the NeDB and the FerretDB tests: every name the
 * checkout accepts is stored and read back byte for byte, in NFC, through a restart of its store;
 * every name it refuses is a 422 that books nothing.
 */
import fc from "fast-check";
import type { ServiceBroker } from "moleculer";

const ROCK = "5b805a00297ae6047030f2e0";

/** The characters that have bitten stores and readers, with ordinary ones around them. */
const TRICKY = fc.constantFrom(
	"a",
	"Z",
	" ",
	"é",
	"e",
	"\u0301", // combining acute: NFD
	"\u2028",
	"\u2029",
	"\u0085",
	"\r",
	"\n",
	"\t",
	"\\",
	'"',
	"\u202e",
	"\u2067",
	"\u200f",
	"\u200b",
	"\ufeff",
	"\ud800",
	"\udc00",
	"\u{1f3ad}",
	"李"
);

/** Names as clients send them: any code points, the tricky ones often, and whole graphemes. */
export const anyName = fc.oneof(
	fc.string({ unit: "binary", minLength: 1, maxLength: 30 }),
	fc.string({ unit: TRICKY, minLength: 1, maxLength: 12 }),
	fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 })
);

interface Booking {
	_id: string;
	name: string;
}

export interface Booked {
	sent: string;
	answer: Booking;
}

/** Books one seat per name through the gateway's checkout action; 422 refusals are kept apart. */
export async function bookEach(
	broker: ServiceBroker,
	names: string[]
): Promise<{ booked: Booked[]; refused: string[] }> {
	const booked: Booked[] = [];
	const refused: string[] = [];
	for (const name of names) {
		try {
			const answer = await broker.call<Booking, object>("api.checkout", {
				name,
				count: 1,
				showID: ROCK
			});
			booked.push({ sent: name, answer });
		} catch (err) {
			if ((err as { code?: number }).code !== 422) throw err;
			refused.push(name);
		}
	}
	return { booked, refused };
}

/**
 * After the restart: each booking reads back with the name it was answered with, which is the
 * name sent, trimmed and in NFC; the show has sold exactly the accepted seats.
 */
export async function expectReadBack(broker: ServiceBroker, booked: Booked[]): Promise<void> {
	for (const { sent, answer } of booked) {
		expect(answer.name).toBe(sent.trim().normalize("NFC"));
		const read = await broker.call<Booking, object>("reservations.get", { id: answer._id });
		expect(read.name).toBe(answer.name);
		expect(Buffer.from(read.name, "utf8").equals(Buffer.from(answer.name, "utf8"))).toBe(true);
	}
	const show = await broker.call<{ reserved: number }, object>("shows.get", { showID: ROCK });
	expect(show.reserved).toBe(booked.length);
}
