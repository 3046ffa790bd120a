/**
 * A service's own store through moleculer-db, on the store backend its settings name
 * (lib/store/store-backend.ts): MongoDB when MONGO_URI is set (one database per service),
 * otherwise an embedded NeDB folder under DATA_DIR/<database>/. Seeds an empty store, creates the
 * indexes the service's queries need, and reaches side collections as `this.side[name]`.
 *
 * moleculer-db's generated CRUD actions are switched off: every write must go through the
 * service's own domain actions, which validate and serialise it.
 */
import type { Service, ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import { storeUnavailable } from "../lib/common/errors";
import {
	defaultStoreSettings,
	isStoreUnreachable,
	resolveStoreBackend
} from "../lib/store/store-backend";
import type {
	DbMethods,
	SideCollection,
	StoreAdapter,
	StoreBackend,
	StoreLayout,
	StoreSettings
} from "../lib/store/store-api";

export { defaultStoreSettings };

interface DbMixinOptions extends StoreLayout {
	/** Documents to insert into an empty store. */
	seed?: () => Record<string, unknown>[];
}

type StoreService = Service &
	DbMethods & {
		adapter: StoreAdapter;
		store: StoreBackend;
		side: Record<string, SideCollection>;
	};

export function createDbMixin(options: DbMixinOptions): Partial<ServiceSchema> {
	const schema: Partial<ServiceSchema> & Record<string, unknown> = {
		mixins: [DbService as unknown as ServiceSchema],

		// A store this node cannot reach is a dependency that is down here, maybe not elsewhere:
		// answer a retryable 503, so the caller's broker tries another instance (every step is
		// idempotent) and the client gets 503, never a 500.
		hooks: {
			error: {
				"*"(_ctx: unknown, err: Error) {
					throw isStoreUnreachable(err) ? storeUnavailable() : err;
				}
			}
		},
		collection: options.collection,

		actions: {
			list: false,
			find: false,
			count: false,
			create: false,
			insert: false,
			get: false,
			update: false,
			remove: false
		} as unknown as ServiceSchema["actions"],

		methods: {
			storeId(this: StoreService, id: string): unknown {
				return this.store.storeId(id);
			},
			toPlain(this: StoreService, doc: unknown) {
				return this.adapter.entityToObject(doc);
			},
			claimVersion(this: StoreService, docId: string, version: number): Promise<boolean> {
				return this.store.claimVersion(docId, version);
			},
			updateWhere(this: StoreService, query, update): Promise<number> {
				return this.store.updateWhere(query, update);
			},
			dropClaim(this: StoreService, docId: string, version: number): Promise<void> {
				return this.store.dropClaim(docId, version);
			},
			pruneClaim(this: StoreService, docId: string, version: number): Promise<void> {
				return this.store.pruneClaim(docId, version);
			}
		},

		// Runs after moleculer-db's own `created`, replacing its default in-memory adapter with a
		// fresh adapter per service instance (a schema-level adapter would be shared by every broker
		// that loads the schema).
		created() {
			const service = this as unknown as StoreService;
			const settings: StoreSettings =
				(service.settings as { store?: StoreSettings }).store ?? defaultStoreSettings();
			service.store = resolveStoreBackend(settings)(settings, options, service);
			service.adapter = service.store.adapter;
			service.adapter.init(service.broker, service);
			service.logger.info(`Store: ${service.store.description}`);
		},

		async afterConnected(this: StoreService) {
			this.side = await this.store.open();
			const adapter = this.adapter;
			if (options.seed && (await adapter.count({})) === 0) {
				const docs = options
					.seed()
					.map(doc => ({ ...doc, _id: this.storeId(String(doc._id)) }));
				await adapter.insertMany(docs);
				this.logger.info(`Seeded ${docs.length} documents into an empty store`);
			}
		},

		async stopped() {
			await (this as unknown as StoreService).store?.close();
		}
	};
	return schema;
}
