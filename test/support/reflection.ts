import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const reflectionRoot = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
const definition = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [reflectionRoot], keepCase: true });
const ReflectionClient = (grpc.loadPackageDefinition(definition) as any).grpc.reflection.v1.ServerReflection;

/** Lists the services a server exposes through grpc.reflection.v1, as grpcurl would. */
export function listServices(address: string): Promise<string[]> {
  const client = new ReflectionClient(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on('data', (response: any) => {
      call.end();
      client.close();
      if (response.error_response) reject(new Error(response.error_response.error_message));
      else resolve(response.list_services_response.service.map((s: { name: string }) => s.name).sort());
    });
    call.on('error', (err: Error) => {
      client.close();
      reject(err);
    });
    call.write({ list_services: '' });
  });
}

/** Resolves a fully-qualified symbol (e.g. a service) to the proto files describing it. */
export function fileContainingSymbol(address: string, symbol: string): Promise<number> {
  const client = new ReflectionClient(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on('data', (response: any) => {
      call.end();
      client.close();
      if (response.error_response) reject(new Error(response.error_response.error_message));
      else resolve(response.file_descriptor_response.file_descriptor_proto.length);
    });
    call.on('error', (err: Error) => {
      client.close();
      reject(err);
    });
    call.write({ file_containing_symbol: symbol });
  });
}
