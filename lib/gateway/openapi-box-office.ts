/**
 * The OpenAPI paths of the browser-facing routes: the box-office page and its assets, and the
 * event stream of seat changes (lib/gateway/event-stream.ts). Merged into lib/gateway/openapi.ts's document.
 */
import type { OpenApiDocument } from "./openapi-types";

const unavailable = { $ref: "#/components/responses/Unavailable" };

const html = { "text/html": { schema: { type: "string" as const } } };

const cached = {
	ETag: {
		description: "The file's version; send it back in `If-None-Match` to get a 304",
		schema: { type: "string" as const }
	},
	"Cache-Control": {
		description: "`no-cache` for the page, `public, max-age=…` for its script and style sheet",
		schema: { type: "string" as const }
	}
};

export const boxOfficePaths: OpenApiDocument["paths"] = {
	"/events": {
		get: {
			operationId: "events",
			summary: "Seat changes as server-sent events",
			description:
				"A `text/event-stream`. The first event is a `snapshot` (`{ shows: [Show…], total }`, " +
				"at most 1000 shows); then one `seats` event (`{ _id, reserved, available }`) per " +
				"change of a show, as it happens. Every event has an id; a client that reconnects " +
				"with `Last-Event-ID` gets the events it missed instead of a snapshot, or a fresh " +
				"snapshot when the id is too old or from another gateway node. A `: heartbeat` " +
				"comment comes every 15 s. Each gateway node serves a limited number of streams " +
				"(`EVENTS_MAX_STREAMS`), and a limited number to one client address " +
				"(`EVENTS_MAX_STREAMS_PER_CLIENT`); past either, 503 with `Retry-After` (type " +
				"`TOO_MANY_STREAMS`).",
			tags: ["shows"],
			parameters: [
				{
					name: "Last-Event-ID",
					in: "header",
					required: false,
					description:
						"The id of the last event received, to resume after it; an id this node " +
						"does not know (of any length) gets a fresh snapshot",
					schema: { type: "string" }
				}
			],
			responses: {
				"200": {
					description: "The stream; it stays open",
					content: {
						"text/event-stream": {
							// One server-sent event, as a client's parser hands it over.
							schema: {
								type: "object",
								properties: {
									id: { type: "string" },
									event: { type: "string", enum: ["snapshot", "seats"] },
									data: {
										type: "string",
										description:
											"JSON: `{ shows, total }` or `{ _id, reserved, available }`"
									},
									retry: { type: "integer" }
								}
							},
							example:
								'retry: 3000\n\nid: 3f2a9c01-0\nevent: snapshot\ndata: {"shows":[…],"total":3}\n\n' +
								'id: 3f2a9c01-1\nevent: seats\ndata: {"_id":"5b805a00297ae6047030f2e0","reserved":5,"available":95}\n\n' +
								": heartbeat\n\n"
						}
					}
				},
				"503": unavailable
			}
		}
	},
	"/box-office/": {
		get: {
			operationId: "boxOffice",
			summary: "The box-office web page",
			description:
				"Shows with seats left, kept live by `/events`; a checkout that books once " +
				"(one `Idempotency-Key` per order); the bookings made there, each with a cancel. " +
				"`GET /box-office` redirects here.",
			tags: ["reservations"],
			responses: {
				"200": { description: "The page", headers: cached, content: html },
				"304": { description: "Unchanged since the ETag given in If-None-Match" }
			}
		}
	},
	"/box-office/{asset}": {
		get: {
			operationId: "boxOfficeAsset",
			summary: "The page's scripts, style sheet and icon",
			tags: ["reservations"],
			parameters: [
				{
					name: "asset",
					in: "path",
					required: true,
					schema: {
						type: "string",
						enum: [
							"index.html",
							"words.js",
							"shows.js",
							"bookings.js",
							"pending.js",
							"box-office.js",
							"box-office.css",
							"favicon.svg"
						]
					}
				}
			],
			responses: {
				"200": {
					description: "The file",
					headers: cached,
					content: {
						"text/javascript": { schema: { type: "string" } },
						"text/css": { schema: { type: "string" } },
						"image/svg+xml": { schema: { type: "string" } },
						...html
					}
				},
				"304": { description: "Unchanged since the ETag given in If-None-Match" },
				"404": { $ref: "#/components/responses/NotFound" }
			}
		}
	}
};
