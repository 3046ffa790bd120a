/**
 * The access log's buffer (lib/gateway/access-log.ts): lines are written together, not one write
 * per request, and nothing buffered is lost when it is flushed.
 */
import { createAccessLog } from "../../lib/gateway/access-log";

describe("access log", () => {
	it("writes buffered lines together, in order, when flushed", () => {
		const writes: string[] = [];
		const log = createAccessLog({
			flushMs: 60000,
			maxBufferBytes: 1 << 20,
			write: t => void writes.push(t)
		});
		log.line("GET / 200 0.1ms");
		log.line("GET /shows/:id 304 0.2ms");
		expect(writes).toEqual([]);
		log.flush();
		expect(writes).toHaveLength(1);
		expect(writes[0]).toMatch(
			/INFO {2}API: GET \/ 200 0\.1ms\n.*GET \/shows\/:id 304 0\.2ms\n$/
		);
		log.flush();
		expect(writes).toHaveLength(1);
	});

	it("writes at once when the buffer is full", () => {
		const writes: string[] = [];
		const log = createAccessLog({
			flushMs: 60000,
			maxBufferBytes: 100,
			write: t => void writes.push(t)
		});
		for (let i = 0; i < 10; i++) log.line(`POST /reserve 201 ${i}.0ms`);
		expect(writes.length).toBeGreaterThan(0);
		log.flush();
		expect(writes.join("").match(/POST \/reserve 201/g)).toHaveLength(10);
	});

	it("writes on its timer without being asked", async () => {
		const writes: string[] = [];
		const log = createAccessLog({
			flushMs: 10,
			maxBufferBytes: 1 << 20,
			write: t => void writes.push(t)
		});
		log.line("GET / 200 0.1ms");
		await new Promise(resolve => setTimeout(resolve, 100));
		expect(writes.join("")).toContain("GET / 200 0.1ms");
	});
});
