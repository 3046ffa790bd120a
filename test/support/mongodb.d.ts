/** The little of the mongodb 3.x driver (it ships no types) that tests use to read stores directly. */
declare module "mongodb" {
	export class ObjectId {
		constructor(hex: string);
		toHexString(): string;
	}
	export interface Collection {
		find(query?: object): { toArray(): Promise<any[]> };
		findOne(query: object): Promise<any>;
		countDocuments(query?: object): Promise<number>;
		insertMany(docs: object[]): Promise<unknown>;
		indexes(): Promise<{ key: Record<string, number>; unique?: boolean }[]>;
	}
	export interface Db {
		collection(name: string): Collection;
	}
	export class MongoClient {
		constructor(uri: string, options?: object);
		connect(): Promise<MongoClient>;
		db(name: string): Db;
		close(): Promise<void>;
	}
}
