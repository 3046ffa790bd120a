/**
 * Before any test file: build the server binaries once (cached in .cache/bin), nats-server and
 * FerretDB unless the caller gives its own servers through NATS_URL / MONGO_URI. Those are handed to the tests as
 * TEST_NATS_URL / TEST_MONGO_URI, and cleared for the test processes themselves so that no unit
 * test picks up a real store by accident.
 */
import { ensureBinary } from "../../scripts/servers";

export default function globalSetup(): void {
	if (process.env.NATS_URL) process.env.TEST_NATS_URL = process.env.NATS_URL;
	else ensureBinary("nats-server");
	if (process.env.MONGO_URI) process.env.TEST_MONGO_URI = process.env.MONGO_URI;
	else ensureBinary("ferretdb");
	// The fault proxy of test/integration/partitions.test.ts.
	ensureBinary("toxiproxy");
	// Compose v2, for the README's `docker compose config` and the stack of compose.test.ts: built
	// here once, so that two test files never build it at the same time.
	ensureBinary("docker-compose");
	for (const name of ["NATS_URL", "MONGO_URI", "TRANSPORTER", "SERVICES", "PORT", "DATA_DIR"])
		delete process.env[name];
}
