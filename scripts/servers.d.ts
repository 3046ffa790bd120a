export interface ServerHandle {
	port: number;
	stop(signal?: NodeJS.Signals): Promise<void>;
	kill(): Promise<void>;
	restart(): Promise<void>;
	log(): string;
}
export function ensureBinary(
	name: "nats-server" | "ferretdb" | "docker-compose" | "toxiproxy"
): string;
export function ensureBinaries(): string[];
export function freePort(): Promise<number>;
export type NatsAuth = { user: string; password: string; token?: undefined } | { token: string };
export function startNats(options?: { auth?: NatsAuth }): Promise<ServerHandle & { url: string }>;
export function startFerretDB(): Promise<ServerHandle & { uri: string }>;
export function startToxiproxy(): Promise<ServerHandle & { apiUrl: string }>;
export const BIN_DIR: string;
