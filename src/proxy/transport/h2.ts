// HTTP/2 between proxies, the same on both sides of the mesh: windows large enough that one stream
// fills a fast link.
import http2 from 'node:http2';

export const MESH_H2_SETTINGS: http2.Settings = { initialWindowSize: 4 << 20, maxConcurrentStreams: 1 << 16 };
export const MESH_H2_SESSION_WINDOW = 16 << 20;
