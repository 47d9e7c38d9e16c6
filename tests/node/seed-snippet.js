const socket = io('http://localhost:3000/jobs', { auth: { token } });
socket.on('connected', () => {
  socket.emit('subscribeQueue', { queue: 'price-file-parser' });
  socket.emit('subscribeAll');           // admin only
});
socket.on('jobUpdate', (data) => console.log('Job updated:', data));
