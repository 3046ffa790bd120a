/** Text rules shared by the services' action params. */

type ValidationErrors = { type: string; expected: unknown; actual: unknown }[];

/**
 * A fastest-validator `custom` check: at most `max` characters (Unicode code points), as JSON
 * Schema's maxLength counts them; the validator's own `max` counts UTF-16 units.
 */
function atMostChars(max: number) {
	return (value: unknown, errors: { type: string; expected: number; actual: number }[]) => {
		if (typeof value === "string") {
			const chars = [...value].length;
			if (chars > max) errors.push({ type: "stringMax", expected: max, actual: chars });
		}
		return value;
	};
}

/** Control characters (C0, DEL, C1): nothing a person's name needs, and trouble in logs and tickets. */
const CONTROL_CHARS = /\p{Cc}/u;

/**
 * Line and paragraph separators: line breaks to many readers (NeDB's among them, which tore a
 * stored record in two at one).
 */
const LINE_SEPARATORS = /[\u2028\u2029]/;

/**
 * Bidi embeddings, overrides (U+202A–U+202E) and isolates (U+2066–U+2069): they reorder the text
 * around them, so a name could show as something else on a ticket or in a log. The plain marks
 * (LRM, RLM, ALM) are left alone: right-to-left names need them.
 */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/;

/** Half of a UTF-16 pair without its other half: not text, and no store keeps it as it came. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The characters of a name, as classes a JSON Schema pattern can carry too (lib/gateway/openapi.ts
 * builds the document's pattern from these, so that the document and this check agree):
 * white space as `String.prototype.trim` takes it, the refused controls and separators, and what a
 * person does not see on its own (combining marks, zero-width and other default-ignorable ones).
 */
export const NAME_CLASSES = {
	space: "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff",
	refused: "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069",
	invisible:
		"\\u00ad\\u0300-\\u036f\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f" +
		"\\u1ab0-\\u1aff\\u1dc0-\\u1dff\\u200b-\\u200f\\u2060-\\u206f\\u20d0-\\u20ff\\u3164" +
		"\\ufe00-\\ufe0f\\ufe20-\\ufe2f\\uffa0\\ufff0-\\ufff8"
};

/** A character a person sees: none of the classes above (any letter, digit, mark of writing, symbol). */
const VISIBLE = new RegExp(
	// Combining marks are listed as code point ranges here, to be excluded one by one, not combined.
	// eslint-disable-next-line no-misleading-character-class
	`[^${NAME_CLASSES.space}${NAME_CLASSES.refused}${NAME_CLASSES.invisible}]`,
	"u"
);

/** Why `text` is not a plain name, or null when it is one. */
function nameProblem(text: string): string | null {
	if (LONE_SURROGATE.test(text)) return "no lone surrogates";
	if (CONTROL_CHARS.test(text)) return "no control characters";
	if (LINE_SEPARATORS.test(text)) return "no line or paragraph separators";
	if (BIDI_CONTROLS.test(text)) return "no bidi overrides or isolates";
	if (!VISIBLE.test(text)) return "at least one visible character";
	return null;
}

/**
 * A name: at most `max` characters, none of the refused kinds (`nameProblem`), and given on in
 * Unicode NFC, so that one name has one stored form however a keyboard composed it.
 */
export function plainText(max: number) {
	const withinMax = atMostChars(max);
	return (value: unknown, errors: ValidationErrors) => {
		if (typeof value !== "string") return value;
		const problem = nameProblem(value);
		if (problem) {
			errors.push({ type: "stringPattern", expected: problem, actual: "" });
			return value;
		}
		const nfc = value.normalize("NFC");
		withinMax(nfc, errors as { type: string; expected: number; actual: number }[]);
		return nfc;
	};
}
