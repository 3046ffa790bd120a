/** The OpenAPI 3 document of the gateway's public routes (served at GET /openapi.json). */
export const openApiDocument = {
	openapi: "3.0.3",
	info: { title: "Theatre tickets", version: "1.0.0" },
	paths: {}
};
