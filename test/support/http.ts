/** Plain HTTP for tests that drive the gateway: the answer's status, parsed body and headers. */

export interface Answer {
	status: number;
	/** The JSON body, or the raw text when it is not JSON (the assertion on it will show it). */
	body: any;
	headers: Headers;
}

export async function httpCall(
	baseUrl: string,
	method: string,
	url: string,
	init: RequestInit = {}
): Promise<Answer> {
	const res = await fetch(`${baseUrl}${url}`, { method, ...init });
	const text = await res.text();
	let body: any = text;
	try {
		body = JSON.parse(text);
	} catch {
		// not JSON: left as text
	}
	return { status: res.status, body, headers: res.headers };
}

/** Request options for a JSON body. */
export const jsonBody = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
	body: JSON.stringify(body),
	headers: { "content-type": "application/json", ...headers }
});

/** Books `count` seats of a show through the gateway as a customer would: the reservation id. */
export async function bookThroughGateway(
	baseUrl: string,
	showID: string,
	count: number,
	name: string
): Promise<string> {
	const answer = await httpCall(baseUrl, "POST", "/reserve", jsonBody({ name, count, showID }));
	if (answer.status !== 201)
		throw new Error(`booking answered ${answer.status}: ${JSON.stringify(answer.body)}`);
	return answer.body._id as string;
}
