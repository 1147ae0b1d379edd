// The emulator's state: buckets of objects, each stored the way S3 keeps it (ETag, Last-Modified to the second,
// encryption, a full-object checksum, metadata and content headers).
import { randomBytes } from 'node:crypto';
import { type ChecksumAlgorithm, computeChecksum, md5Hex } from './checksums.ts';
import { noSuchBucket } from './errors.ts';

export interface S3StoredObject {
  body: Buffer;
  /** Quoted, as S3 sends it. */
  etag: string;
  lastModified: Date;
  contentType: string;
  /** x-amz-meta-* values keyed by the name without the prefix. */
  metadata: Record<string, string>;
  serverSideEncryption: string;
  kmsKeyId: string | undefined;
  checksum: { algorithm: ChecksumAlgorithm; value: string };
  /** Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires as sent. */
  contentHeaders: Record<string, string>;
}

export type ObjectAttributes = Partial<Omit<S3StoredObject, 'body' | 'etag' | 'lastModified'>>;

export type Bucket = Map<string, S3StoredObject>;

export class ObjectStore {
  readonly #buckets = new Map<string, Bucket>();

  constructor(buckets: readonly string[] = []) {
    for (const name of buckets) this.createBucket(name);
  }

  hasBucket(name: string): boolean {
    return this.#buckets.has(name);
  }

  createBucket(name: string): void {
    if (!this.#buckets.has(name)) this.#buckets.set(name, new Map());
  }

  deleteBucket(name: string): void {
    this.#buckets.delete(name);
  }

  /** The bucket's objects; S3's NoSuchBucket when there is no such bucket. */
  bucket(name: string): Bucket {
    const objects = this.#buckets.get(name);
    if (!objects) throw noSuchBucket(name);
    return objects;
  }

  get(bucket: string, key: string): S3StoredObject | undefined {
    return this.#buckets.get(bucket)?.get(key);
  }

  delete(bucket: string, key: string): boolean {
    return this.#buckets.get(bucket)?.delete(key) ?? false;
  }

  /** Stores a new version of the object: new ETag and Last-Modified. */
  put(objects: Bucket, key: string, body: Buffer, attrs: ObjectAttributes): S3StoredObject {
    const sse = attrs.serverSideEncryption ?? 'AES256';
    // Like S3: the ETag is the MD5 of the data only for unencrypted and SSE-S3 objects.
    const etag = sse.startsWith('aws:kms') ? md5Hex(Buffer.concat([randomBytes(16), body])) : md5Hex(body);
    const object: S3StoredObject = {
      body,
      etag: `"${etag}"`,
      lastModified: new Date(Math.floor(Date.now() / 1000) * 1000),
      contentType: attrs.contentType ?? 'binary/octet-stream',
      metadata: attrs.metadata ?? {},
      serverSideEncryption: sse,
      kmsKeyId: attrs.kmsKeyId,
      // S3 keeps a full-object CRC64NVME for uploads that did not name a checksum.
      checksum: attrs.checksum ?? { algorithm: 'crc64nvme', value: computeChecksum('crc64nvme', body) },
      contentHeaders: attrs.contentHeaders ?? {},
    };
    objects.set(key, object);
    return object;
  }
}
