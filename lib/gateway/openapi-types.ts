/** The parts of OpenAPI 3.0 that the gateway's document (lib/gateway/openapi.ts) uses. */
export interface SchemaObject {
	$ref?: string;
	type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
	description?: string;
	enum?: readonly (string | number | boolean)[];
	format?: string;
	pattern?: string;
	minLength?: number;
	maxLength?: number;
	minimum?: number;
	maximum?: number;
	items?: SchemaObject;
	properties?: Record<string, SchemaObject>;
	required?: readonly string[];
	additionalProperties?: boolean | SchemaObject;
	example?: unknown;
}

interface HeaderObject {
	$ref?: string;
	description?: string;
	required?: boolean;
	schema?: SchemaObject;
}

interface ParameterObject {
	$ref?: string;
	name?: string;
	in?: "path" | "query" | "header";
	description?: string;
	required?: boolean;
	schema?: SchemaObject;
	example?: unknown;
}

export interface MediaTypeObject {
	schema: SchemaObject;
	example?: unknown;
}

interface LinkObject {
	operationId: string;
	parameters: Record<string, string>;
	description?: string;
}

interface ResponseObject {
	$ref?: string;
	description?: string;
	headers?: Record<string, HeaderObject>;
	content?: Record<string, MediaTypeObject>;
	links?: Record<string, LinkObject>;
}

export interface OperationObject {
	operationId: string;
	summary: string;
	description?: string;
	tags?: string[];
	parameters?: ParameterObject[];
	requestBody?: {
		required: boolean;
		description?: string;
		content: Record<string, MediaTypeObject>;
	};
	responses: Record<string, ResponseObject>;
}

export type Method = "get" | "post" | "delete";

export interface OpenApiDocument {
	openapi: "3.0.3";
	info: { title: string; version: string; description?: string };
	tags?: { name: string; description?: string }[];
	paths: Record<string, Partial<Record<Method, OperationObject>>>;
	components: {
		schemas: Record<string, SchemaObject>;
		parameters: Record<string, ParameterObject>;
		headers: Record<string, HeaderObject>;
		responses: Record<string, ResponseObject>;
	};
}
