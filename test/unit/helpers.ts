/**
 * Shared helpers for the unit tests: an in-process broker with the real services on in-memory
 * NeDB stores, and small utilities. Not a test file itself (jest only runs *.test.ts).
 */
import crypto from "node:crypto";
import { ServiceBroker, type BrokerOptions, type ServiceSchema } from "moleculer";
import ShowsService from "../../services/shows.service";
import ReservationsService from "../../services/reservations.service";
import ApiService from "../../services/api.service";
import type { PublicShow } from "../../lib/common/types";

/** In-memory NeDB: nothing touches the disk, and every broker starts from an empty store. */
export const MEMORY_STORE = { mongoUri: null, dataDir: null };

/** A sweeper/reconciler interval long enough that it never runs during a test. */
export const NEVER = 600000;

export interface ShowsOptions {
	holdTtlSeconds?: number;
	sweepIntervalMs?: number;
	hooks?: ServiceSchema["hooks"];
}

export function showsSchema(opts: ShowsOptions = {}): ServiceSchema {
	return {
		...ShowsService,
		settings: {
			...ShowsService.settings,
			store: MEMORY_STORE,
			holdTtlSeconds: opts.holdTtlSeconds ?? 600,
			sweepIntervalMs: opts.sweepIntervalMs ?? NEVER
		},
		...(opts.hooks ? { hooks: opts.hooks } : {})
	} as ServiceSchema;
}

export interface ReservationsOptions {
	holdTtlSeconds?: number;
	sweepIntervalMs?: number;
	reconcileGraceMs?: number;
	hooks?: ServiceSchema["hooks"];
}

export function reservationsSchema(opts: ReservationsOptions = {}): ServiceSchema {
	return {
		...ReservationsService,
		settings: {
			...ReservationsService.settings,
			store: MEMORY_STORE,
			holdTtlSeconds: opts.holdTtlSeconds ?? 600,
			sweepIntervalMs: opts.sweepIntervalMs ?? NEVER,
			reconcileGraceMs: opts.reconcileGraceMs ?? 0
		},
		...(opts.hooks ? { hooks: opts.hooks } : {})
	} as ServiceSchema;
}

/** The gateway; `server: false` unless a test wants real HTTP on a free port. */
export function apiSchema(
	opts: { http?: boolean; maxTicketsPerOrder?: number; showsCacheTtlMs?: number } = {}
): ServiceSchema {
	return {
		...ApiService,
		settings: {
			...ApiService.settings,
			...(opts.http ? { port: 0, ip: "127.0.0.1" } : { server: false }),
			maxTicketsPerOrder: opts.maxTicketsPerOrder ?? 10,
			showsCacheTtlMs: opts.showsCacheTtlMs ?? 0
		}
	} as unknown as ServiceSchema;
}

export async function startBroker(
	schemas: ServiceSchema[],
	options: BrokerOptions = {}
): Promise<ServiceBroker> {
	const broker = new ServiceBroker({ logger: false, ...options });
	for (const schema of schemas) broker.createService(schema);
	await broker.start();
	return broker;
}

/** A fresh hold / checkout id that matches the services' id pattern. */
export function newId(prefix = "id"): string {
	return `${prefix}-${crypto.randomBytes(8).toString("hex")}`;
}

export function sleep(ms: number): Promise<void> {
	return new Promise(resolve => setTimeout(resolve, ms));
}

/** Waits past a hold's deadline of `seconds`. */
export function outliveHold(seconds: number): Promise<void> {
	return sleep(seconds * 1000 + 150);
}

/** Polls `probe` until it returns true; fails with `what` if it never does within `timeoutMs`. */
export async function eventually(
	what: string,
	probe: () => Promise<boolean>,
	timeoutMs = 10000
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await probe()) return;
		if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
		await sleep(25);
	}
}

export async function createShow(
	broker: ServiceBroker,
	houseSize: number,
	name = "Test Show"
): Promise<PublicShow> {
	return broker.call<PublicShow, object>("shows.create", { name, houseSize });
}

/** The gateway's list, as `GET /` answers it: the action hands back the JSON bytes it sends. */
export async function listShows(broker: ServiceBroker): Promise<PublicShow[]> {
	return JSON.parse(String(await broker.call<Buffer, object>("api.listShows", {})));
}

export async function getShow(broker: ServiceBroker, showID: string): Promise<PublicShow> {
	return broker.call<PublicShow, object>("shows.get", { showID });
}

/** Settles every promise and splits the outcomes. */
export async function settle<T>(
	promises: Promise<T>[]
): Promise<{ ok: T[]; errors: Array<Error & Record<string, unknown>> }> {
	const results = await Promise.allSettled(promises);
	const ok: T[] = [];
	const errors: Array<Error & Record<string, unknown>> = [];
	for (const r of results) {
		if (r.status === "fulfilled") ok.push(r.value);
		else errors.push(r.reason as Error & Record<string, unknown>);
	}
	return { ok, errors };
}
