/**
 * The OpenAPI 3 document of the gateway's public routes (served at GET /openapi.json): exactly the
 * routes of docs/api.md, nothing else. test/integration/openapi.test.ts checks that every
 * public route is documented and that the answers match their documented schemas.
 */
import { boxOfficePaths } from "./openapi-box-office";
import type { RouteEntry } from "./route-table";
import { NAME_CLASSES } from "../common/text";
import type {
	MediaTypeObject,
	OpenApiDocument,
	OperationObject,
	SchemaObject
} from "./openapi-types";

const ref = (kind: "schemas" | "parameters" | "headers" | "responses", name: string) => ({
	$ref: `#/components/${kind}/${name}`
});

const json = (schema: SchemaObject, example?: unknown): Record<string, MediaTypeObject> => ({
	"application/json": example === undefined ? { schema } : { schema, example }
});

/**
 * The name policy's classes (lib/common/text.ts), spelled out rather than as `\s` or `\p{…}`,
 * which mean different things to JavaScript and to the regex engines of API testing tools.
 * Lone surrogates are refused too, but not spelled: a surrogate range is no valid class for Rust's
 * regex, with which schemathesis's validator compiles patterns, and it would drop the pattern.
 */
const JS_SPACE = NAME_CLASSES.space;
const CONTROL = NAME_CLASSES.refused;
const INVISIBLE = NAME_CLASSES.invisible;
const NOT_SPACE = `[^${JS_SPACE}${CONTROL}${INVISIBLE}]`;
/**
 * 1 to 100 characters once surrounding white space is trimmed, as the gateway trims it, none of
 * the refused ones inside; roughly "a visible one" at each end (lib/common/text.ts decides).
 */
const NAME_PATTERN = `^[${JS_SPACE}]*${NOT_SPACE}(?:[^${CONTROL}]{0,98}${NOT_SPACE})?[${JS_SPACE}]*$`;

/**
 * The document for a gateway with these routes that accepts at most `maxTicketsPerOrder` tickets
 * in one order. Its paths are exactly the route table's; each is described by its operation below,
 * or, for a route this file does not describe yet, by the table's own summary.
 */
export function buildOpenApiDocument(
	maxTicketsPerOrder: number,
	table: readonly RouteEntry[]
): OpenApiDocument {
	const described = describedOperations();
	return {
		openapi: "3.0.3",
		info: {
			title: "Theatre tickets",
			version: "1.0.0",
			description:
				"Shows, seat reservations and their cancellation. Errors are JSON in Moleculer's " +
				"error shape (`name`, `message`, `code`, and usually `type` and `data`); any path " +
				"or method not listed here answers 404."
		},
		tags: [
			{ name: "shows", description: "What is on, and how many seats are left" },
			{ name: "reservations", description: "Booking and canceling seats" },
			{ name: "operations", description: "For operators and tooling" }
		],
		paths: pathsOf(table, described),
		components: {
			schemas: {
				ObjectId: {
					type: "string",
					description: "A show id: 24 hexadecimal digits",
					pattern: "^[0-9a-fA-F]{24}$",
					example: "5b805a00297ae6047030f2e0"
				},
				ReservationId: {
					type: "string",
					pattern: "^[A-Za-z0-9_-]{8,64}$",
					example: "617301bb90c94d9488bd9f10c52a0f50"
				},
				Show: {
					type: "object",
					required: ["_id", "name", "houseSize", "reserved", "available"],
					properties: {
						_id: ref("schemas", "ObjectId"),
						name: { type: "string" },
						houseSize: { type: "integer", minimum: 1 },
						reserved: {
							type: "integer",
							minimum: 0,
							description: "Seats held or sold"
						},
						available: { type: "integer", minimum: 0 }
					}
				},
				ReserveRequest: {
					type: "object",
					required: ["name", "count", "showID"],
					properties: {
						name: {
							type: "string",
							description:
								"Who the seats are for: 1 to 100 characters once surrounding white " +
								"space is dropped (the gateway drops it), at least one visible; no control " +
								"characters, line or paragraph separators, bidi overrides or isolates, or lone " +
								"surrogates. Stored in Unicode NFC.",
							minLength: 1,
							pattern: NAME_PATTERN,
							example: "Ada Lovelace"
						},
						count: {
							type: "integer",
							description: `Seats to book, at most ${maxTicketsPerOrder} in one order`,
							minimum: 1,
							maximum: maxTicketsPerOrder,
							example: 2
						},
						showID: ref("schemas", "ObjectId")
					}
				},
				Booking: {
					type: "object",
					required: ["success", "_id", "showID", "name", "guests", "status"],
					properties: {
						success: { type: "boolean", enum: [true] },
						_id: ref("schemas", "ReservationId"),
						showID: ref("schemas", "ObjectId"),
						name: { type: "string" },
						guests: { type: "integer", minimum: 1 },
						status: {
							type: "string",
							description:
								"`confirmed`; a replay shows the booking's status now, so " +
								"`canceled` once it has been canceled",
							enum: ["confirmed", "canceled"]
						}
					}
				},
				Reservation: {
					type: "object",
					required: [
						"_id",
						"showID",
						"name",
						"guests",
						"status",
						"createdAt",
						"updatedAt"
					],
					properties: {
						_id: ref("schemas", "ReservationId"),
						showID: ref("schemas", "ObjectId"),
						name: { type: "string" },
						guests: { type: "integer", minimum: 1 },
						status: {
							type: "string",
							enum: ["pending", "confirmed", "failed", "canceled"]
						},
						createdAt: {
							type: "integer",
							description: "Epoch milliseconds",
							minimum: 0
						},
						updatedAt: {
							type: "integer",
							description: "Epoch milliseconds",
							minimum: 0
						}
					}
				},
				Cancellation: {
					type: "object",
					required: ["canceled", "_id", "showID", "name", "guests"],
					properties: {
						canceled: { type: "boolean", enum: [true] },
						_id: ref("schemas", "ReservationId"),
						showID: ref("schemas", "ObjectId"),
						name: { type: "string" },
						guests: { type: "integer", minimum: 1 }
					}
				},
				Health: {
					type: "object",
					required: ["status", "nodeID", "broker", "services", "uptime"],
					properties: {
						status: { type: "string", enum: ["ok", "unavailable"] },
						nodeID: { type: "string" },
						broker: { type: "string", enum: ["connected", "disconnected"] },
						services: {
							type: "object",
							description: "Whether each service a checkout needs is reachable",
							required: ["shows", "reservations"],
							properties: {
								shows: { type: "boolean" },
								reservations: { type: "boolean" }
							},
							additionalProperties: { type: "boolean" }
						},
						quarantined: {
							type: "integer",
							minimum: 0,
							description:
								"Unreadable lines of the embedded stores set aside at start, waiting " +
								"for an operator (a warning: the node still serves)"
						},
						uptime: { type: "integer", description: "Seconds", minimum: 0 }
					}
				},
				Error: {
					type: "object",
					required: ["name", "message", "code"],
					properties: {
						name: { type: "string", example: "MoleculerClientError" },
						message: { type: "string" },
						code: { type: "integer", description: "The HTTP status", minimum: 400 },
						type: { type: "string", example: "NOT_ENOUGH_SEATS" },
						data: { description: "Details; their shape depends on `type`" }
					}
				}
			},
			parameters: {
				ShowId: {
					name: "id",
					in: "path",
					required: true,
					description: "The show's id; any other string is an unknown show (404)",
					schema: ref("schemas", "ObjectId")
				},
				ReservationId: {
					name: "id",
					in: "path",
					required: true,
					description: "The reservation's id; any other string is unknown (404)",
					schema: ref("schemas", "ReservationId")
				},
				IdempotencyKey: {
					name: "Idempotency-Key",
					in: "header",
					required: false,
					description:
						"Identifies this request for at least 24 hours, so that a retry replays the " +
						"first answer instead of booking twice. Not a secret: the reservation id " +
						"is random and never derived from it",
					schema: {
						type: "string",
						minLength: 1,
						maxLength: 255,
						pattern: "^[\\x21-\\x7e]{1,255}$"
					}
				}
			},
			headers: {
				RetryAfter: {
					description: "Seconds to wait before trying again",
					required: true,
					schema: { type: "integer", minimum: 0 }
				}
			},
			responses: {
				NotFound: {
					description: "No such show or reservation",
					content: json(ref("schemas", "Error"))
				},
				InvalidInput: {
					description:
						"Invalid input: a missing or ill-typed field, a count out of range, " +
						"malformed JSON, JSON nested too deep, a `__proto__`/`constructor` key or a " +
						"key sent twice, fields in the query string, a bad or reused Idempotency-Key",
					content: json(ref("schemas", "Error"))
				},
				Unavailable: {
					description: "A service this request needs is down; retry after a while",
					headers: { "Retry-After": ref("headers", "RetryAfter") },
					content: json(ref("schemas", "Error"))
				}
			}
		}
	};
}

/** The gateway's document, for the configured MAX_TICKETS_PER_ORDER. */
/** How each known route's operation is described, by operation id. */
function describedOperations(): Record<string, OperationObject> {
	const byPath: OpenApiDocument["paths"] = {
		"/": {
			get: {
				operationId: "listShows",
				summary: "List the shows",
				description:
					"The shows in id order, a page at a time. `X-Total-Count` tells how many " +
					"there are; `Link` (rel=next) points to the next page when there is one.",
				tags: ["shows"],
				parameters: [
					{
						name: "limit",
						in: "query",
						description: "Shows per page (default 100).",
						schema: { type: "integer", minimum: 1, maximum: 1000 }
					},
					{
						name: "offset",
						in: "query",
						description: "Shows to skip (default 0).",
						schema: { type: "integer", minimum: 0 }
					}
				],
				responses: {
					"200": {
						description: "The shows",
						headers: {
							"X-Total-Count": {
								description: "How many shows there are in all",
								schema: { type: "integer", minimum: 0 }
							},
							Link: {
								description: '`</?limit=…&offset=…>; rel="next"` when more follow',
								schema: { type: "string" }
							}
						},
						content: json({ type: "array", items: ref("schemas", "Show") })
					},
					"422": ref("responses", "InvalidInput"),
					"503": ref("responses", "Unavailable")
				}
			}
		},
		"/shows/{id}": {
			get: {
				operationId: "getShow",
				summary: "One show",
				tags: ["shows"],
				parameters: [ref("parameters", "ShowId")],
				responses: {
					"200": { description: "The show", content: json(ref("schemas", "Show")) },
					"404": ref("responses", "NotFound"),
					"422": ref("responses", "InvalidInput"),
					"503": ref("responses", "Unavailable")
				}
			}
		},
		"/reserve": {
			post: {
				operationId: "reserve",
				summary: "Book seats",
				description:
					"Holds `count` seats of the show, records the reservation and confirms it. " +
					"With an `Idempotency-Key`, repeating the same request replays the first " +
					"answer (with `Idempotent-Replayed: true`) instead of booking twice; the same " +
					"key with a different body is refused (422).",
				tags: ["reservations"],
				parameters: [ref("parameters", "IdempotencyKey")],
				requestBody: {
					required: true,
					description: "As JSON, or as an HTML form.",
					content: {
						"application/json": { schema: ref("schemas", "ReserveRequest") },
						"application/x-www-form-urlencoded": {
							schema: ref("schemas", "ReserveRequest")
						}
					}
				},
				responses: {
					"201": {
						description: "Booked (or an earlier booking with this Idempotency-Key)",
						headers: {
							Location: {
								description: "The reservation: `/reservations/{_id}`",
								required: true,
								schema: { type: "string" }
							},
							"Idempotent-Replayed": {
								description: "`true` when this replays an earlier answer",
								schema: { type: "string", enum: ["true"] }
							}
						},
						content: json(ref("schemas", "Booking")),
						links: {
							getReservation: {
								operationId: "getReservation",
								parameters: { id: "$response.body#/_id" }
							},
							cancelReservation: {
								operationId: "cancelReservation",
								parameters: { id: "$response.body#/_id" }
							}
						}
					},
					"400": {
						description:
							"The body could not be read: a broken Content-Encoding (gzip, " +
							"deflate, br) or bytes that are not UTF-8",
						content: json(ref("schemas", "Error"))
					},
					"404": ref("responses", "NotFound"),
					"408": {
						description: `The body did not arrive within BODY_TIMEOUT_MS`,
						content: json(ref("schemas", "Error"))
					},
					"409": {
						description:
							"Not enough seats left (`NOT_ENOUGH_SEATS`), or this checkout " +
							"failed earlier (`CHECKOUT_FAILED`) or lost its hold (`HOLD_EXPIRED`)",
						content: json(ref("schemas", "Error"))
					},
					"413": {
						description:
							"The request body (or its Content-Length, answered before reading) " +
							"is over BODY_LIMIT",
						content: json(ref("schemas", "Error"))
					},
					"415": {
						description:
							"The body is neither application/json nor " +
							"application/x-www-form-urlencoded, or uses an unsupported encoding",
						content: json(ref("schemas", "Error"))
					},
					"422": ref("responses", "InvalidInput"),
					"429": {
						description: "Too many checkouts from this client address; retry later",
						headers: {
							"Retry-After": ref("headers", "RetryAfter"),
							"X-Rate-Limit-Limit": {
								description: "Checkouts allowed per minute",
								schema: { type: "integer", minimum: 1 }
							},
							"X-Rate-Limit-Remaining": {
								description: "Checkouts left in this minute",
								schema: { type: "integer", minimum: 0 }
							},
							"X-Rate-Limit-Reset": {
								description: "When the count starts anew, in epoch milliseconds",
								schema: { type: "integer", minimum: 0 }
							}
						},
						content: json(ref("schemas", "Error"))
					},
					"503": ref("responses", "Unavailable")
				}
			}
		},
		"/reservations/{id}": {
			get: {
				operationId: "getReservation",
				summary: "One reservation",
				tags: ["reservations"],
				parameters: [ref("parameters", "ReservationId")],
				responses: {
					"200": {
						description: "The reservation",
						content: json(ref("schemas", "Reservation"))
					},
					"404": ref("responses", "NotFound"),
					"422": ref("responses", "InvalidInput"),
					"503": ref("responses", "Unavailable")
				}
			},
			delete: {
				operationId: "cancelReservation",
				summary: "Cancel a reservation",
				description:
					"Its seats go back on sale exactly once, however often this is repeated; a " +
					"repeat answers 200 again.",
				tags: ["reservations"],
				parameters: [ref("parameters", "ReservationId")],
				responses: {
					"200": {
						description: "Canceled",
						content: json(ref("schemas", "Cancellation"))
					},
					"404": ref("responses", "NotFound"),
					"409": {
						description:
							"The reservation is pending or failed, so there is nothing to cancel " +
							"(`RESERVATION_NOT_CANCELABLE`)",
						content: json(ref("schemas", "Error"))
					},
					"422": ref("responses", "InvalidInput"),
					"503": ref("responses", "Unavailable")
				}
			}
		},
		"/health": {
			get: {
				operationId: "health",
				summary: "Whether this node can serve checkouts",
				tags: ["operations"],
				responses: {
					"200": {
						description: "Connected, and shows and reservations reachable",
						content: json(ref("schemas", "Health"))
					},
					"503": {
						description: "Not ready to serve checkouts",
						headers: { "Retry-After": ref("headers", "RetryAfter") },
						content: json(ref("schemas", "Health"))
					}
				}
			}
		},
		"/openapi.json": {
			get: {
				operationId: "openapi",
				summary: "This document",
				tags: ["operations"],
				responses: {
					"200": {
						description: "The OpenAPI 3 document of the public routes",
						content: json({
							type: "object",
							required: ["openapi", "info", "paths"],
							properties: {
								openapi: { type: "string" },
								info: { type: "object" },
								paths: { type: "object" }
							}
						})
					}
				}
			}
		},
		...boxOfficePaths
	};
	const operations: Record<string, OperationObject> = {};
	for (const methods of Object.values(byPath))
		for (const operation of Object.values(methods))
			if (operation?.operationId) operations[operation.operationId] = operation;
	return operations;
}

/** The document's paths: one operation per entry of the route table, under OpenAPI's path syntax. */
function pathsOf(
	table: readonly RouteEntry[],
	described: Record<string, OperationObject>
): OpenApiDocument["paths"] {
	const paths: OpenApiDocument["paths"] = {};
	for (const entry of table) {
		const { operationId, summary, tags } = entry.openapi;
		const path = entry.path.replace(/:(\w+)/g, "{$1}");
		paths[path] = {
			...paths[path],
			[entry.method.toLowerCase()]: described[operationId] ?? {
				operationId,
				summary,
				...(tags ? { tags } : {}),
				responses: { "200": { description: summary } }
			}
		};
	}
	return paths;
}
