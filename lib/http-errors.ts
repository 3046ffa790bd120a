/**
 * How an error becomes an HTTP answer: the status, a JSON body in Moleculer's error shape
 * (`name`, `message`, `code`, `type`, `data`), and when to retry. Used by the gateway's `onError`.
 */

export interface HttpError {
	status: number;
	body: { name: string; message: string; code: number; type?: string; data?: unknown };
	retryAfter?: number;
}

interface AnyError {
	name?: string;
	message?: string;
	code?: unknown;
	type?: string;
	status?: number;
	data?: unknown;
	retryable?: boolean;
}

/** Moleculer's ways of saying "the service you need is not there or did not answer". */
const UNAVAILABLE = new Set([
	"ServiceNotFoundError",
	"ServiceNotAvailableError",
	"RequestTimeoutError",
	"RequestSkippedError",
	"RequestRejectedError",
	"QueueIsFullError",
	"BrokerDisconnectedError",
	"MaxCallLevelError"
]);

/**
 * The MongoDB driver saying it cannot reach the store (a partition, a restart): a dependency that is
 * down, not a bug. They arrive by name from the service that met them.
 */
const STORE_UNREACHABLE =
	/^Mongo(ServerSelection|Network|NetworkTimeout|Timeout|PoolCleared|TopologyClosed|NotConnected)Error$/;

/** Statuses a client may see as they are; anything else in 4xx becomes 422 or 404. */
const CLIENT_STATUSES = new Set([404, 409, 413, 415, 422, 429]);

const RETRY_AFTER_UNAVAILABLE_S = 2;
const RETRY_AFTER_RATE_LIMITED_S = 60;

function unavailable(): HttpError {
	return {
		status: 503,
		body: {
			name: "ServiceUnavailableError",
			message: "a service needed for this request is unavailable; try again shortly",
			code: 503,
			type: "SERVICE_UNAVAILABLE"
		},
		retryAfter: RETRY_AFTER_UNAVAILABLE_S
	};
}

export function describeError(error: unknown): HttpError {
	const err = (error ?? {}) as AnyError;

	// body-parser's errors carry `status` and a `type` of their own.
	if (err.type === "entity.too.large" || err.status === 413)
		return {
			status: 413,
			body: {
				name: "PayloadTooLarge",
				message: "request body is too large",
				code: 413,
				type: "PAYLOAD_TOO_LARGE"
			}
		};
	if (err.type === "entity.parse.failed")
		return {
			status: 422,
			body: {
				name: "ValidationError",
				message: "request body is not valid JSON",
				code: 422,
				type: "INVALID_JSON"
			}
		};
	if (err.type === "encoding.unsupported" || err.type === "charset.unsupported")
		return {
			status: 415,
			body: {
				name: "UnsupportedMediaType",
				message: err.message ?? "unsupported encoding",
				code: 415,
				type: "UNSUPPORTED_MEDIA_TYPE"
			}
		};

	const name = err.name ?? "";
	if (
		UNAVAILABLE.has(name) ||
		STORE_UNREACHABLE.test(name) ||
		(err.retryable && Number(err.code) >= 500)
	)
		return unavailable();

	const code = typeof err.code === "number" ? err.code : 500;
	if (err.name === "ValidationError" || (code >= 400 && code < 500)) {
		const status = CLIENT_STATUSES.has(code) ? code : code === 404 ? 404 : 422;
		return {
			status,
			body: {
				name: err.name ?? "Error",
				message: err.message ?? "invalid request",
				code: status,
				type: err.type,
				data: err.data
			},
			retryAfter: status === 429 ? RETRY_AFTER_RATE_LIMITED_S : undefined
		};
	}
	// A 503 that names its own cause and wait (a gateway node full of event streams) keeps them.
	const ownWait = (err.data as { retryAfter?: unknown } | undefined)?.retryAfter;
	if (code === 503 && err.type && typeof ownWait === "number")
		return {
			status: 503,
			body: {
				name: "ServiceUnavailableError",
				message: err.message ?? "unavailable; try again shortly",
				code: 503,
				type: err.type
			},
			retryAfter: ownWait
		};
	if (code === 503) return unavailable();

	return {
		status: 500,
		body: {
			name: "InternalServerError",
			message: "something went wrong on our side",
			code: 500,
			type: "INTERNAL_ERROR"
		}
	};
}
