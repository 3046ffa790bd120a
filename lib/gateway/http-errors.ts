/**
 * How an error becomes an HTTP answer: the status, a JSON body in Moleculer's error shape
 * (`name`, `message`, `code`, `type`, `data`), and when to retry. Moleculer's errors are told apart
 * by class (a remote node's come back as the same classes), body-parser's and the store driver's by
 * their own `type` and name. lib/gateway/error-answers.ts writes what this decides.
 */
import { Errors } from "moleculer";
import { ErrorTypes, STORE_UNREACHABLE } from "../common/errors";

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
const UNAVAILABLE: (new (...args: never[]) => Error)[] = [
	Errors.ServiceNotFoundError,
	Errors.ServiceNotAvailableError,
	Errors.RequestTimeoutError,
	Errors.RequestSkippedError,
	Errors.RequestRejectedError,
	Errors.QueueIsFullError,
	Errors.BrokerDisconnectedError,
	Errors.MaxCallLevelError
];

/** The names of the refusals the gateway decides itself, by status (Moleculer's error shape). */
const REFUSAL_NAMES: Record<number, string> = {
	400: "BadRequest",
	404: "NotFoundError",
	405: "MethodNotAllowed",
	408: "RequestTimeout",
	413: "PayloadTooLarge",
	417: "ExpectationFailed",
	431: "RequestHeaderFieldsTooLarge"
};

/**
 * A refusal the gateway decides before any action runs (the front door, Node's parser): its status
 * is answered as it is, where an action's unlisted 4xx becomes 422.
 */
class GatewayRefusal extends Errors.MoleculerClientError {
	constructor(status: number, type: string, message: string) {
		super(message, status, type);
		this.name = REFUSAL_NAMES[status] ?? "Error";
	}
}

export function httpRefusal(status: number, type: string, message: string): GatewayRefusal {
	return new GatewayRefusal(status, type, message);
}

/** Statuses a client may see as they are (400: a body that could not be read); other 4xx become 422. */
const CLIENT_STATUSES = new Set([400, 404, 409, 413, 415, 422, 429]);

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

/** What each field of the public routes must be, in the words a client reads. */
const FIELD_RULES: Record<string, string> = {
	showID: "showID must be the id of a show: 24 hexadecimal characters",
	name: "name must be text of 1 to 100 characters, at least one visible, without control characters, line separators or bidi controls",
	count: "count must be a whole number of tickets, at least 1",
	limit: "limit must be a whole number from 1 to 1000",
	offset: "offset must be a whole number, 0 or more",
	id: "id is not a valid id"
};

/**
 * A validation error in the client's terms, the same whichever way the field was sent (JSON or
 * form): one sentence per field, no node id, action name or echo of the value.
 */
function inUserTerms(data: unknown): {
	message: string;
	data: { field: string; message: string }[];
} {
	const items = Array.isArray(data) ? (data as { field?: unknown; type?: unknown }[]) : [];
	const fields = [...new Set(items.map(i => String(i.field ?? "")).filter(Boolean))];
	const details = fields.map(field => {
		const missing = items.some(i => i.field === field && i.type === "required");
		const rule = FIELD_RULES[field] ?? `${field} is invalid`;
		return { field, message: missing ? `${field} is missing: ${rule}` : rule };
	});
	return {
		message: details.length > 0 ? details.map(d => d.message).join("; ") : "invalid request",
		data: details
	};
}

/** Keys of error data that describe our cluster rather than the client's request. */
const INTERNAL_KEYS = new Set(["nodeID", "action", "stack", "retryable", "ctx"]);

function withoutInternals(data: unknown): unknown {
	if (Array.isArray(data)) return data.map(withoutInternals);
	if (!data || typeof data !== "object") return data;
	return Object.fromEntries(Object.entries(data).filter(([key]) => !INTERNAL_KEYS.has(key)));
}

/**
 * A body that could not be read: a broken Content-Encoding (zlib's errors keep their own string
 * `code` when moleculer-web wraps them), bytes that are not UTF-8, or a body cut short.
 */
function bodyReadError(err: AnyError): HttpError | null {
	const wrappedZlib = typeof err.code === "string" && /^(Z_|ERR__|ERR_BROTLI)/.test(err.code);
	const unreadable =
		err.type === "body.not.utf8" ||
		err.type === "request.aborted" ||
		err.type === "request.size.invalid" ||
		err.type === "stream.encoding.set";
	if (!wrappedZlib && !unreadable) return null;
	const message =
		err.type === "body.not.utf8"
			? "request body is not valid UTF-8"
			: err.type === "request.aborted" || err.type === "request.size.invalid"
				? "request body is incomplete"
				: "request body could not be decoded: check its Content-Encoding";
	return { status: 400, body: { name: "BadRequest", message, code: 400, type: "BAD_REQUEST" } };
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
	const bodyUnreadable = bodyReadError(err);
	if (bodyUnreadable) return bodyUnreadable;
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

	if (
		UNAVAILABLE.some(unavailableError => error instanceof unavailableError) ||
		err.type === ErrorTypes.STORE_UNAVAILABLE ||
		// The MongoDB driver's own errors, should one pass the store layer unconverted.
		STORE_UNREACHABLE.test(err.name ?? "") ||
		(err.retryable && Number(err.code) >= 500)
	)
		return unavailable();

	const code = typeof err.code === "number" ? err.code : 500;
	const invalid = error instanceof Errors.ValidationError;
	if (invalid || (code >= 400 && code < 500)) {
		const status = CLIENT_STATUSES.has(code) || error instanceof GatewayRefusal ? code : 422;
		const validation = invalid ? inUserTerms(err.data) : null;
		return {
			status,
			body: {
				name: err.name ?? "Error",
				message: validation?.message ?? err.message ?? "invalid request",
				code: status,
				type: err.type,
				data: validation?.data ?? withoutInternals(err.data)
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
