export interface ServerHandle {
	port: number;
	stop(signal?: NodeJS.Signals): Promise<void>;
	kill(): Promise<void>;
	restart(): Promise<void>;
	log(): string;
}
export function ensureBinary(name: "nats-server" | "ferretdb" | "toxiproxy"): string;
export function ensureBinaries(): string[];
export function freePort(): Promise<number>;
export function startNats(): Promise<ServerHandle & { url: string }>;
export function startFerretDB(): Promise<ServerHandle & { uri: string }>;
export function startToxiproxy(): Promise<ServerHandle & { apiUrl: string }>;
export const BIN_DIR: string;
