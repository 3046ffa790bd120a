import type { ServerHandle } from "./servers";

export function oneNodeConfig(appAddress: string, port: number): string;
export function startNginx(
	httpConfig: (port: number) => string,
	options?: { workers?: number | "auto"; connections?: number }
): Promise<ServerHandle & { baseUrl: string; errorLog(): string }>;
