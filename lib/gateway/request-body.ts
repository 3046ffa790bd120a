/**
 * How the checkout's body is read: JSON and forms, as UTF-8 only, parsed so that no key can reach
 * an object's prototype, no key appears twice and nothing is nested deeper than a checkout needs.
 * Both arrive as text (body-parser's `text` parser does limit, inflation and charset) and are
 * checked here: JSON before `JSON.parse` sees it, forms as they are split into fields.
 */
import { isUtf8 } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Errors } from "moleculer";
import { describeError } from "./http-errors";

const { MoleculerClientError } = Errors;

/** A checkout body is one flat object; a little room for clients that send more. */
const MAX_JSON_DEPTH = 8;
/** Keys that would reach or replace an object's prototype once merged into the call's params. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
/** A checkout form has three fields; more than this many is not a form a person sent. */
const MAX_FORM_FIELDS = 100;
/** The fields a checkout reads; a form's other fields are dropped, as JSON's are ignored. */
const CHECKOUT_FIELDS = new Set(["showID", "name", "count"]);

const JSON_WHITESPACE = new Set([" ", "\t", "\n", "\r"]);

function refused(message: string, type: string, status = 422) {
	return new MoleculerClientError(message, status, type);
}

/** body-parser's `verify`: the raw bytes must be UTF-8, whatever the Content-Type claims. */
export function requireUtf8(_req: IncomingMessage, _res: ServerResponse, buf: Buffer): void {
	if (!isUtf8(buf))
		throw Object.assign(new Error("request body is not valid UTF-8"), {
			status: 400,
			type: "body.not.utf8"
		});
}

/**
 * Scans JSON text for what `JSON.parse` lets through: nesting past `MAX_JSON_DEPTH`, prototype
 * keys and repeated keys. Anything else malformed is left for `JSON.parse` to refuse.
 */
function checkJsonShape(text: string): void {
	const objects: (Set<string> | null)[] = [];
	for (let i = 0; i < text.length; i++) {
		const c = text[i];
		if (c === "{" || c === "[") {
			objects.push(c === "{" ? new Set() : null);
			if (objects.length > MAX_JSON_DEPTH)
				throw refused(
					`request body is nested too deep (at most ${MAX_JSON_DEPTH} levels)`,
					"JSON_TOO_DEEP"
				);
		} else if (c === "}" || c === "]") objects.pop();
		else if (c === '"') {
			let end = i + 1;
			while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
			const keys = objects[objects.length - 1];
			let next = end + 1;
			while (JSON_WHITESPACE.has(text[next])) next++;
			if (keys && text[next] === ":") {
				let key: string;
				try {
					key = JSON.parse(text.slice(i, end + 1)) as string;
				} catch {
					return; // JSON.parse refuses it with its own message
				}
				if (FORBIDDEN_KEYS.has(key))
					throw refused(
						`the key "${key}" is not allowed in a request body`,
						"FORBIDDEN_KEY"
					);
				if (keys.has(key))
					throw refused(
						`the key "${key}" appears twice in the request body`,
						"DUPLICATE_KEY"
					);
				keys.add(key);
			}
			i = end;
		}
	}
}

/** A form's checkout fields, each once, none named like a prototype key, as a plain object. */
function parseForm(text: string): Record<string, string> {
	const form: Record<string, string> = {};
	let fields = 0;
	for (const [key, value] of new URLSearchParams(text)) {
		if (++fields > MAX_FORM_FIELDS)
			throw refused(`a form has at most ${MAX_FORM_FIELDS} fields`, "TOO_MANY_FIELDS");
		if (FORBIDDEN_KEYS.has(key))
			throw refused(`the field "${key}" is not allowed in a form`, "FORBIDDEN_KEY");
		if (!CHECKOUT_FIELDS.has(key)) continue;
		if (Object.hasOwn(form, key))
			throw refused(`the field "${key}" appears more than once in the form`, "DUPLICATE_KEY");
		form[key] = value;
	}
	return form;
}

function parseJson(text: string): Record<string, unknown> {
	checkJsonShape(text);
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		throw refused("request body is not valid JSON", "INVALID_JSON");
	}
	if (body === null || typeof body !== "object" || Array.isArray(body))
		throw refused("request body must be a JSON object", "INVALID_JSON");
	return body as Record<string, unknown>;
}

/** The checkout's fields from the text of a body of `type` (JSON or a form); throws a 422. */
export function parseCheckoutParams(type: string, text: string): Record<string, unknown> {
	return type === "application/json" ? parseJson(text) : parseForm(text);
}

/**
 * A route middleware after body-parser's `text` parser (which did the limit, inflation and
 * charset): turns the checked text of a JSON body or a form into the object it stands for.
 */
export function parseCheckoutBody(
	req: IncomingMessage & { body?: unknown },
	_res: ServerResponse,
	next: (err?: unknown) => void
): void {
	try {
		const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
		if (
			typeof req.body === "string" &&
			(type === "application/json" || type === "application/x-www-form-urlencoded")
		)
			req.body = parseCheckoutParams(type, req.body);
		next();
	} catch (err) {
		next(err);
	}
}

/**
 * A route error middleware right after the body parsers: a body they could not read (broken
 * Content-Encoding, not UTF-8, too large) becomes the client error it is, so that it is answered
 * as 4xx and not logged as a failure of ours.
 */
export function bodyReadFailed(
	err: unknown,
	_req: IncomingMessage,
	_res: ServerResponse,
	next: (err?: unknown) => void
): void {
	const { status, body } = describeError(err);
	next(
		status < 500
			? new MoleculerClientError(body.message, status, body.type ?? "BAD_REQUEST")
			: err
	);
}
