import { IcebergError } from '../errors.js';

/** An Avro encoding or decoding failure; `field` is the record path (`data_file.partition.day`). */
export class AvroError extends IcebergError {
  override readonly name = 'AvroError';
  constructor(message: string, field?: string) {
    super('corrupt', field ? `${message} (at ${field})` : message, field);
  }
}
